/**
 * What the Teams adapter needs around the SDK: the activity and invoke shapes it reads and
 * answers, message activities, an in-memory conversation store, the SDK's logger, and doctor's
 * one token check. Kept apart from `teams-bot.ts` so that file holds only the adapter.
 */
import type { AppOptions, IPlugin } from '@microsoft/teams.apps';
import type { ChatConversationStore } from '../../broker/ports/chat.ts';
import type { Logger } from '../../lib/log.ts';
import type { Line, Message } from '../core/message.ts';
import { isBotError } from '../errors.ts';
import { CARD_CONTENT_TYPE, renderMessageCard, renderMessageText } from './adaptive-card.ts';
import { BotTokenSource } from './bot-token.ts';
import { DEFAULT_RETRY } from './teams-calls.ts';
import type { TeamsSettings } from './teams-config.ts';

/** The parts of an activity the handlers read (the SDK's types are wider). */
export interface InboundActivity {
  id?: string;
  text?: string;
  serviceUrl: string;
  replyToId?: string;
  from: { id: string; aadObjectId?: string };
  conversation: { id: string; conversationType?: string; tenantId?: string };
  channelData?: { tenant?: { id?: string } };
  value?: { action?: { verb?: unknown; data?: unknown } };
}

/** The body of an `adaptiveCard/action` invoke response. */
export type InvokeBody =
  | { statusCode: 200; type: 'application/vnd.microsoft.card.adaptive'; value: unknown }
  | { statusCode: 200; type: 'application/vnd.microsoft.activity.message'; value: string }
  | { statusCode: 400; type: 'application/vnd.microsoft.error'; value: { code: string; message: string } };

export function isPersonal(activity: InboundActivity): boolean {
  return activity.conversation.conversationType === 'personal';
}

/** A message as an activity: an Adaptive Card, and its first line as the notification text. */
export function messageActivity(message: Message): Record<string, unknown> {
  return {
    type: 'message',
    text: renderMessageText(message),
    attachments: [{ contentType: CARD_CONTENT_TYPE, content: renderMessageCard(message) }],
  };
}

export function renderLineMessage(l: Line): string {
  return renderMessageText({ lines: [l] });
}

export function invokeMessage(value: string): InvokeBody {
  return { statusCode: 200, type: 'application/vnd.microsoft.activity.message', value };
}

export function invokeError(code: string, message: string): InvokeBody {
  return { statusCode: 400, type: 'application/vnd.microsoft.error', value: { code, message } };
}

/** Conversation references in memory (no store: tests, a single process). */
export function memoryConversations(): ChatConversationStore {
  const byUser = new Map<string, Parameters<ChatConversationStore['saveChatConversation']>[0]>();
  return {
    async saveChatConversation(record) {
      byUser.delete(record.userId);
      byUser.set(record.userId, record);
      if (byUser.size > 5000) byUser.delete(byUser.keys().next().value as string);
    },
    async getChatConversation(_chat, who) {
      if ('userId' in who) return byUser.get(who.userId);
      return [...byUser.values()].reverse().find((r) => r.personId === who.personId);
    },
  };
}

/** The SDK logs through pino at warn and above only, as strings: its objects can hold tokens and bodies. */
export function toSdkLogger(log: Logger): NonNullable<AppOptions<IPlugin>['logger']> {
  const text = (parts: unknown[]) =>
    parts
      .map((p) => (typeof p === 'string' ? p : p instanceof Error ? p.message : ''))
      .filter(Boolean)
      .join(' ')
      .slice(0, 500);
  const logger: NonNullable<AppOptions<IPlugin>['logger']> = {
    debug: () => {},
    info: () => {},
    log: () => {},
    trace: () => {},
    warn: (...parts: unknown[]) => log.warn({ component: 'teams-sdk' }, text(parts)),
    error: (...parts: unknown[]) => log.error({ component: 'teams-sdk' }, text(parts)),
    child: () => logger,
  } as never;
  return logger;
}

/**
 * One token request with the configured credentials (`warden doctor`): undefined when Entra ID
 * issues one, else why not, network failures told apart from refused credentials.
 */
export async function checkTeamsSettings(
  settings: TeamsSettings,
): Promise<{ kind: 'unreachable' | 'refused'; message: string } | undefined> {
  const tokens = new BotTokenSource({
    appId: settings.appId,
    appPassword: settings.appPassword,
    tenantId: settings.tenantId,
    loginEndpoint: settings.loginEndpoint,
    retry: { ...DEFAULT_RETRY, attempts: 1 },
  });
  try {
    await tokens.get(settings.botScope);
    return undefined;
  } catch (error) {
    const transient = isBotError(error) && error.details.transient === true;
    return { kind: transient ? 'unreachable' : 'refused', message: (error as Error).message };
  }
}
