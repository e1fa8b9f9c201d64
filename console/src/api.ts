// The console's connection to sessiond: the generated clients over
// gRPC-web on the page's own origin, the bearer token, and errors in words.

import { Code, ConnectError, createClient, type Interceptor } from "@connectrpc/connect";
import { createGrpcWebTransport } from "@connectrpc/connect-web";
import { ErrorInfoSchema } from "./gen/google/rpc/error_details_pb";
import { AccessService } from "./gen/sessiond/v1/access_service_pb";
import { AuditService } from "./gen/sessiond/v1/audit_service_pb";
import { SessionService } from "./gen/sessiond/v1/session_service_pb";
import { UserContextService } from "./gen/sessiond/v1/user_context_service_pb";

const TOKEN_KEY = "sessiond.console.token";

/** The bearer token signed in with (kept for this browser tab only). */
export function token(): string | null {
  return sessionStorage.getItem(TOKEN_KEY);
}

/** Signs in with `value`, or out with null. */
export function setToken(value: string | null): void {
  if (value) sessionStorage.setItem(TOKEN_KEY, value);
  else sessionStorage.removeItem(TOKEN_KEY);
}

const bearer: Interceptor = (next) => (request) => {
  const value = token();
  if (value) request.header.set("authorization", `Bearer ${value}`);
  return next(request);
};

const transport = createGrpcWebTransport({
  baseUrl: location.origin,
  useBinaryFormat: true,
  interceptors: [bearer],
});

export const sessions = createClient(SessionService, transport);
export const userContexts = createClient(UserContextService, transport);
export const access = createClient(AccessService, transport);
export const audit = createClient(AuditService, transport);

/** The gRPC code's name, as the contract spells it (PERMISSION_DENIED). */
export function codeName(code: Code): string {
  return (Code[code] ?? String(code)).replace(/([a-z])([A-Z])/g, "$1_$2").toUpperCase();
}

/** The ErrorInfo reason of a sessiond error, when it carries one. */
export function reasonOf(error: unknown): string | undefined {
  if (!(error instanceof ConnectError)) return undefined;
  return error.findDetails(ErrorInfoSchema)[0]?.reason;
}

/** Whether `error` is the call being aborted by the console itself. */
export function isAbort(error: unknown): boolean {
  return ConnectError.from(error).code === Code.Canceled;
}

/** An error as shown to the user: code, reason and the server's message. */
export function describe(error: unknown): string {
  const e = ConnectError.from(error);
  const reason = reasonOf(e);
  const code = codeName(e.code);
  const head = reason && reason !== code ? `${code} / ${reason}` : code;
  return `${head}: ${e.rawMessage}`;
}
