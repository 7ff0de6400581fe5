#!/usr/bin/env python3
"""Send one send job to a stage of the eCourtDate relay with boto3: to its SQS send queue, or as an
EventBridge event on the bus its rule listens on (docs/deploy.md, "Producers").

    python3 send_job.py sqs <SendQueueUrl>
    python3 send_job.py events <staging|production> [--event-bus <name, or its ARN from another account>]

Needs boto3 (pip install boto3) and the producer's own credentials, with only the producer policy of
docs/deploy.md. --job <file> sends the job in that file instead of the one below.
"""

import argparse
import hashlib
import json
import re
import sys
from urllib.parse import quote

import boto3

# The stage's EventBridge contract: its EventSource (one per stage) and EventDetailType outputs.
SOURCE_PREFIX = "ecourtdate-relay.upstream."
DETAIL_TYPE = "eCourtDate Send Message"

# One job (docs/contract.md, "The send job"); "id" is your system's key for this send.
JOB = """
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
"""


# What SQS takes as a MessageGroupId: 1 to 128 letters, digits and ASCII punctuation.
SQS_GROUP = re.compile(r"""[A-Za-z0-9!"#$%&'()*+,\-./:;<=>?@\[\\\]^_`{|}~]{1,128}""")


def message_group(body: str) -> str:
    """The job's message group: its agency_reference, or "default" (docs/contract.md, "Message group"). A
    reference SQS refuses as a group (a space, a character outside ASCII, over 128 characters) is percent-encoded
    as the relay does, or named by its SHA-256 when still too long."""
    reference = json.loads(body).get("agency_reference")
    if not isinstance(reference, str) or not reference.strip():
        return "default"
    if SQS_GROUP.fullmatch(reference):
        return reference
    encoded = quote(reference, safe="!*'()")
    if SQS_GROUP.fullmatch(encoded):
        return encoded
    return "sha256:" + hashlib.sha256(reference.encode()).hexdigest()


def send_to_queue(queue_url: str, body: str) -> str:
    """Puts the job on the send queue in its agency's message group; returns the SQS message id."""
    response = boto3.client("sqs").send_message(
        QueueUrl=queue_url, MessageBody=body, MessageGroupId=message_group(body)
    )
    return response["MessageId"]


def put_event(stage: str, event_bus: str, body: str) -> str:
    """Puts the job as the detail of one event with the stage's source; returns the event id."""
    response = boto3.client("events").put_events(
        Entries=[
            {
                "EventBusName": event_bus,
                "Source": SOURCE_PREFIX + stage,
                "DetailType": DETAIL_TYPE,
                "Detail": body,
            }
        ]
    )
    entry = response["Entries"][0]
    # PutEvents answers 200 even when it refuses an entry: the entry says why.
    if response["FailedEntryCount"]:
        raise SystemExit(f"not accepted: {entry.get('ErrorCode')}: {entry.get('ErrorMessage')}")
    return entry["EventId"]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--job", help="a file holding one job as JSON (default: the example job)")
    paths = parser.add_subparsers(dest="path", required=True)
    sqs = paths.add_parser("sqs", help="send to the stage's send queue")
    sqs.add_argument("queue_url", help="the stage's SendQueueUrl output")
    events = paths.add_parser("events", help="put an event on the bus the stage's rule listens on")
    events.add_argument("stage", choices=("staging", "production"))
    events.add_argument("--event-bus", default="default", help="the stage's EventBusName output, or its ARN")
    args = parser.parse_args()

    text = JOB
    if args.job:
        with open(args.job, encoding="utf-8") as file:
            text = file.read()
    body = json.dumps(json.loads(text), separators=(",", ":"), ensure_ascii=False)
    if args.path == "sqs":
        print(send_to_queue(args.queue_url, body))
    else:
        print(put_event(args.stage, args.event_bus, body))


if __name__ == "__main__":
    sys.exit(main())
