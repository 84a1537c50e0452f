#!/bin/sh
# Writes the page from the environment, then serves it.
mkdir -p /www
printf '%s\nrole=%s env=%s tz=%s\n' "$GREETING" "$ROLE" "$APP_ENV" "$TZ" > /www/index.html
exec httpd -f -p 8080 -h /www
