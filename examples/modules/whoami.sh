#!/bin/sh
# Answers with the session's user and the user context the run acts as.
# User ids never hold control characters (the server refuses them), so a
# JSON string needs only its backslashes and quotes escaped.
json_string() {
    printf '"%s"' "$(printf '%s' "$1" | sed 's/\\/\\\\/g; s/"/\\"/g')"
}
printf '{"user": %s, "acting_user": %s}\n' "$(json_string "$SESSIOND_USER")" "$(json_string "$SESSIOND_ACTING_USER")"
