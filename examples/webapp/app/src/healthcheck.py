"""The app's health check: /healthz answers 200 once the database and the cache answer."""

import sys
import urllib.request

try:
    with urllib.request.urlopen("http://127.0.0.1:8000/healthz", timeout=2) as response:
        sys.exit(0 if response.status == 200 else 1)
except OSError as error:
    print(error)
    sys.exit(1)
