/** What the API returns for a request: the record with ISO times, for humans and tools alike. */
import type { AccessRequest } from '../model.ts';

export type ApiRequest = Omit<AccessRequest, 'decision'> & {
  summary: string;
  created: string;
  expires: string | null;
};

export function toApiRequest(request: AccessRequest): ApiRequest {
  const { decision, ...rest } = request;
  return {
    ...rest,
    summary: decision.summary,
    created: new Date(request.createdAt).toISOString(),
    expires: request.expiresAt === null ? null : new Date(request.expiresAt).toISOString(),
  };
}
