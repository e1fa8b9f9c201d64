// Who the console's user is to the server, and what it may do: WhoAmI and
// CheckAccess of the access service, so that actions the caller may not
// take are shown disabled with the server's reason.

import { access } from "./api";
import {
  AuthenticationMethod,
  Permission,
  type WhoAmIResponse,
} from "./gen/sessiond/v1/access_service_pb";

/** The answer to "may I?": allowed, or why not. */
export interface Check {
  allowed: boolean;
  reason: string;
}

/** The signed-in caller. */
export interface Caller {
  who: WhoAmIResponse;
  /** Whether the server authenticates callers (sign-out makes sense). */
  authenticates: boolean;
  /** Whether it may read the audit trail. */
  readAudit: Check;
}

let endChecks = new Map<string, Promise<Check>>();

/** Asks the server who the caller is and whether it may read the audit. */
export async function loadCaller(): Promise<Caller> {
  endChecks = new Map();
  const who = await access.whoAmI({});
  const readAudit = await access.checkAccess({ permission: Permission.READ_AUDIT });
  return {
    who,
    authenticates: who.method !== AuthenticationMethod.NONE,
    readAudit: { allowed: readAudit.allowed, reason: readAudit.reason },
  };
}

/**
 * Whether the caller may end `sessionId` (of `user`). The policy decides
 * ending by the session's user, so one check per user is asked and kept
 * until the next sign-in.
 */
export function mayEnd(sessionId: bigint, user: string): Promise<Check> {
  let check = endChecks.get(user);
  if (!check) {
    check = access
      .checkAccess({ permission: Permission.END_SESSION, sessionId })
      .then((r) => ({ allowed: r.allowed, reason: r.reason }))
      .catch((e: unknown) => ({ allowed: false, reason: String(e) }));
    endChecks.set(user, check);
  }
  return check;
}
