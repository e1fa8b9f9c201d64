// Sign-in with a bearer token (a static token from `sessiond token create`
// or a JWT), when the server authenticates its callers.

import { h, replace } from "../dom";

/** Shows the sign-in form; `signIn` gets the token entered. */
export function loginView(
  root: HTMLElement,
  problem: string | undefined,
  signIn: (token: string) => void,
): void {
  const input = h("input", {
    id: "token",
    type: "password",
    autocomplete: "current-password",
    required: true,
    size: 48,
  });
  const form = h(
    "form",
    {
      class: "login",
      onsubmit: (event: Event) => {
        event.preventDefault();
        const value = input.value.trim();
        if (value) signIn(value);
      },
    },
    h("h1", null, "Sign in"),
    h("p", null, "This server requires a credential: paste a bearer token (static token or JWT)."),
    h("label", { for: "token" }, "Token"),
    input,
    h("button", { type: "submit" }, "Sign in"),
    problem && h("p", { class: "error", role: "alert" }, problem),
  );
  replace(root, form);
  input.focus();
}
