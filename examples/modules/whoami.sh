#!/bin/sh
# Answers with the session's user and the user context the run acts as.
printf '{"user": "%s", "acting_user": "%s"}\n' "$SESSIOND_USER" "$SESSIOND_ACTING_USER"
