#!/usr/bin/env bash
# Sends one send job to a stage of the eCourtDate relay with the AWS CLI: to its SQS send queue, or as an
# EventBridge event on the bus its rule listens on (docs/deploy.md, "Producers").
#
#   ./send-job.sh sqs <SendQueueUrl>
#   ./send-job.sh events <staging|production> [<event bus name, or its ARN from another account>]
#
# Credentials: the producer's own, with only the producer policy of docs/deploy.md. JOB_FILE=<file> sends the
# job in that file instead of the one below. ENDPOINT_URL=<url> sends to another endpoint, e.g. the local
# pipeline's SQS (npm start -- --keep-running; its endpoints.json names it): it is passed as --endpoint-url, which
# every AWS CLI takes (AWS_ENDPOINT_URL only from CLI v2.13). The local pipeline has no EventBridge: use `sqs`.
set -euo pipefail

# The stage's EventBridge contract: its EventSource (one per stage) and EventDetailType outputs.
SOURCE_PREFIX='ecourtdate-relay.upstream.'
DETAIL_TYPE='eCourtDate Send Message'

# One job (docs/contract.md, "The send job"); "id" is your system's key for this send.
JOB=$(cat <<'JSON'
{
  "id": "cms-50117-reminder-1",
  "message": {
    "to": "+15555550100",
    "content": "Reminder: you have court on Dec 3 at 9:00 AM, Room 4B.",
    "subject": "Court reminder",
    "channel": "text"
  },
  "agency_reference": "county-a"
}
JSON
)
if [[ -n "${JOB_FILE:-}" ]]; then JOB=$(cat "$JOB_FILE"); fi
# One line: JSON strings hold no raw line breaks, so joining the lines keeps the job as it is.
BODY=$(printf '%s\n' "$JOB" | sed 's/^[[:space:]]*//' | tr -d '\n')

# The queue's message group: the job's agency_reference, or "default" without one, so that SQS serves every
# agency fairly (docs/contract.md, "Message group"). A reference SQS refuses as a group (a space, a character
# outside ASCII, over 128 characters) is percent-encoded as the relay does, or named by its SHA-256 when still
# too long. (A reference written with JSON escapes, \u00f1 or \", is not decoded here: write it as UTF-8.)
SQS_GROUP='^[][A-Za-z0-9!"#$%&'"'"'()*+,./:;<=>?@\^_`{|}~-]{1,128}$'
message_group() {
  local LC_ALL=C reference=$1 encoded='' byte
  if [[ -z "${reference//[[:space:]]/}" ]]; then printf 'default'; return; fi
  if [[ "$reference" =~ $SQS_GROUP ]]; then printf '%s' "$reference"; return; fi
  # As encodeURIComponent: each UTF-8 byte but the unreserved characters as %XX.
  while IFS= read -r -n1 -d '' byte; do
    case "$byte" in
      [A-Za-z0-9_.!~*\'\(\)-]) encoded+=$byte ;;
      *) encoded+=$(printf '%%%02X' "'$byte") ;;
    esac
  done < <(printf '%s' "$reference")
  if [[ ${#encoded} -le 128 ]]; then printf '%s' "$encoded"; return; fi
  local sum=(sha256sum)
  command -v sha256sum >/dev/null || sum=(shasum -a 256)
  printf 'sha256:%s' "$(printf '%s' "$reference" | "${sum[@]}" | cut -d' ' -f1)"
}
GROUP=$(message_group "$(printf '%s' "$BODY" | sed -n 's/.*"agency_reference"[[:space:]]*:[[:space:]]*"\([^"]*\)".*/\1/p')")

# --endpoint-url only when ENDPOINT_URL is given.
ENDPOINT=()
if [[ -n "${ENDPOINT_URL:-}" ]]; then ENDPOINT=(--endpoint-url "$ENDPOINT_URL"); fi

usage() {
  echo "usage: $0 sqs <SendQueueUrl> | $0 events <staging|production> [event bus]" >&2
  exit 2
}

case "${1:-}" in
  sqs)
    [[ $# -eq 2 ]] || usage
    aws sqs send-message ${ENDPOINT[@]+"${ENDPOINT[@]}"} --queue-url "$2" --message-body "$BODY" --message-group-id "$GROUP" --query MessageId --output text
    ;;
  events)
    [[ $# -ge 2 && $# -le 3 ]] || usage
    case "$2" in staging | production) ;; *) echo "stage: expected staging or production, got \"$2\"" >&2; exit 2 ;; esac
    # Detail is the job as a JSON string: escape its backslashes and quotes.
    DETAIL=$(printf '%s' "$BODY" | sed 's/\\/\\\\/g; s/"/\\"/g')
    ENTRY="[{\"EventBusName\":\"${3:-default}\",\"Source\":\"${SOURCE_PREFIX}$2\",\"DetailType\":\"${DETAIL_TYPE}\",\"Detail\":\"${DETAIL}\"}]"
    RESULT=$(aws events put-events ${ENDPOINT[@]+"${ENDPOINT[@]}"} --entries "$ENTRY" --query '[FailedEntryCount, Entries[0].EventId, Entries[0].ErrorCode]' --output text)
    read -r FAILED EVENT_ID ERROR_CODE <<<"$RESULT"
    if [[ "$FAILED" != "0" ]]; then echo "not accepted: $ERROR_CODE" >&2; exit 1; fi
    echo "$EVENT_ID"
    ;;
  *) usage ;;
esac
