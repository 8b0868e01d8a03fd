#!/usr/bin/env bash
# `make run`: the sandbox, a worker and gunicorn with the example config, until Ctrl-C.
set -euo pipefail
cd "$(dirname "$0")/.."
set -a; . config/example.env; set +a
export CONNECTOR_CONFIG_DIR=${CONNECTOR_CONFIG_DIR:-config}
export CONNECTOR_DATABASE_URL=${CONNECTOR_DATABASE_URL:-sqlite:///var/connector.db}
WEB_PORT=${WEB_PORT:-8000}
mkdir -p var
# Web and worker processes share their Prometheus counters through this directory.
export PROMETHEUS_MULTIPROC_DIR=${PROMETHEUS_MULTIPROC_DIR:-var/metrics}
rm -rf "$PROMETHEUS_MULTIPROC_DIR"; mkdir -p "$PROMETHEUS_MULTIPROC_DIR"
BIN=.venv/bin

$BIN/connector check-config
$BIN/connector db upgrade  # a store from an older version is brought up to date
pids=()
cleanup() { kill "${pids[@]}" 2>/dev/null || true; wait 2>/dev/null || true; }
trap cleanup EXIT INT TERM

# --demo: email activity on the example list, which the listrak-activity source polls to Segment.
$BIN/connector sandbox --port 8900 --demo > var/sandbox.log 2>&1 & pids+=($!)
# The Segment look-alike takes the place of Segment's tracking API (SEGMENT_API_URL).
$BIN/connector segment-sandbox --port 8901 --write-key "$SEGMENT_WRITE_KEY" > var/segment-sandbox.log 2>&1 &
pids+=($!)
for port in 8900 8901; do
  for _ in $(seq 50); do curl -fs http://127.0.0.1:$port/_sandbox/state >/dev/null && break; sleep 0.1; done
done
$BIN/connector worker > var/worker.log 2>&1 & pids+=($!)
$BIN/gunicorn --workers 2 --threads 4 --bind 127.0.0.1:$WEB_PORT --log-level warning wsgi:app &
pids+=($!)
for _ in $(seq 100); do curl -fs http://127.0.0.1:$WEB_PORT/readyz >/dev/null && break; sleep 0.1; done

cat <<MSG

  Connector on http://127.0.0.1:$WEB_PORT  ·  Listrak sandbox on http://127.0.0.1:8900
  Segment look-alike on http://127.0.0.1:8901
  Logs: var/worker.log, var/sandbox.log, var/segment-sandbox.log  ·  Store: $CONNECTOR_DATABASE_URL

  Send a signed opt-in (paste into another terminal in this folder):

    body='{"event_id":"demo-'\$RANDOM'","type":"opt_in","event_time":"'\$(date -u +%Y-%m-%dT%H:%M:%SZ)'","person":{"email":"Jane.Doe@Example.com","first_name":"Jane","last_name":"Doe","phone_number":"+15555555555","share_link":"refer.example.com/jdoe","funnel":"advocate"}}'
    curl -s http://127.0.0.1:$WEB_PORT/webhooks/extole -H 'Content-Type: application/json' \\
      -H "X-Extole-Signature: sha256=\$(printf %s "\$body" | openssl dgst -sha256 -hmac $EXTOLE_WEBHOOK_SECRET -r | cut -d' ' -f1)" \\
      -d "\$body"

  (or: .venv/bin/python scripts/send_event.py opt_in jane.doe@example.com — and opt_out)

  Send a signed SMS opt-in (SMS list 456 of sender code 123 in the sandbox):

    body='{"event_id":"sms-'\$RANDOM'","type":"sms_opt_in","event_time":"'\$(date -u +%Y-%m-%dT%H:%M:%SZ)'","person":{"phone_number":"+1 (555) 555-5555","email":"jane.doe@example.com","first_name":"Jane","last_name":"Doe"}}'
    curl -s http://127.0.0.1:$WEB_PORT/webhooks/extole -H 'Content-Type: application/json' \\
      -H "X-Extole-Signature: sha256=\$(printf %s "\$body" | openssl dgst -sha256 -hmac $EXTOLE_WEBHOOK_SECRET -r | cut -d' ' -f1)" \\
      -d "\$body"

  (or: .venv/bin/python scripts/send_event.py sms_opt_in "+1 555 555 5555" — and sms_opt_out)

  See the result:
    Listrak's side:  curl -s http://127.0.0.1:8900/_sandbox/state    (email: "lists"; SMS: "sms" → "123" → "phoneLists" → "456")
    Segment's side:  curl -s http://127.0.0.1:8901/_sandbox/state    (counts, messageIds, requests)
                     curl -s 'http://127.0.0.1:8901/_sandbox/calls?event=Email%20Opened'
                     (Listrak email activity, polled every 10s, arrives there as track/identify calls)
                     curl -s 'http://127.0.0.1:8901/_sandbox/calls?type=identify'
                     (list membership: Listrak_list_12345 true or false; send an opt_out for
                     jane.doe@example.com and within 10s her trait turns false)
    Live View:       http://127.0.0.1:$WEB_PORT/live   (admin token: $CONNECTOR_ADMIN_TOKEN)
    Jane's consent story (why she is (un)subscribed, what Listrak holds now):
                     http://127.0.0.1:$WEB_PORT/live/contacts/15555555555  ·  /live/contacts/jane.doe@example.com
                     curl -s -H "Authorization: Bearer $CONNECTOR_ADMIN_TOKEN" http://127.0.0.1:$WEB_PORT/admin/api/contacts/15555555555

  Ctrl-C stops everything.
MSG
wait -n "${pids[@]}"
