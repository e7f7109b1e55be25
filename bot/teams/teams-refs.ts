/**
 * Teams message references and conversation ids. Pure.
 *
 * A reference is `<conversation id>|<activity id>`: where a card was posted and its id. A root
 * card is posted to the channel's own conversation, so a reply in its thread, which arrives in
 * `<channel>;messageid=<root id>`, names the same reference ({@link threadRootOf}).
 */
import type { MessageRef } from '../core/surface.ts';
import { BotError } from '../errors.ts';

const THREAD = ';messageid=';

/** `<conversation>|<activity>`. */
export function formatTeamsRef(conversationId: string, activityId: string): MessageRef {
  return `${conversationId}|${activityId}`;
}

/** The conversation and activity of a reference made by {@link formatTeamsRef}. */
export function parseTeamsRef(ref: MessageRef): { conversationId: string; activityId: string } {
  const at = ref.lastIndexOf('|');
  if (at <= 0 || at === ref.length - 1)
    throw new BotError('ERR_BOT_INTERNAL', 'not a Teams message reference');
  return { conversationId: ref.slice(0, at), activityId: ref.slice(at + 1) };
}

/** Whether a conversation is a Teams channel (the only kind whose messages have threads). */
export function isChannelConversation(conversationId: string): boolean {
  return /^19:[^;]*@thread\.(tacv2|skype)$/i.test(baseConversation(conversationId));
}

/** A conversation id without its `;messageid=…` part. */
export function baseConversation(conversationId: string): string {
  const at = conversationId.indexOf(THREAD);
  return at < 0 ? conversationId : conversationId.slice(0, at);
}

/** The conversation to post a reply to `root` in: its thread in a channel, the same chat elsewhere. */
export function threadConversation(root: MessageRef): { conversationId: string; replyToId: string } {
  const { conversationId, activityId } = parseTeamsRef(root);
  const base = baseConversation(conversationId);
  return isChannelConversation(base)
    ? { conversationId: `${base}${THREAD}${activityId}`, replyToId: activityId }
    : { conversationId: base, replyToId: activityId };
}

/** The root reference a message in a channel thread belongs to, if it is in one. */
export function threadRootOf(conversationId: string, replyToId?: unknown): MessageRef | undefined {
  const at = conversationId.indexOf(THREAD);
  if (at >= 0) {
    const root = conversationId.slice(at + THREAD.length);
    return root ? formatTeamsRef(conversationId.slice(0, at), root) : undefined;
  }
  // Outside channels a reply names the message it answers (a quoted reply in a chat).
  return typeof replyToId === 'string' && replyToId ? formatTeamsRef(conversationId, replyToId) : undefined;
}
