// Sends one send job to a stage of the eCourtDate relay with the AWS SDK for .NET: to its SQS send queue, or as
// an EventBridge event on the bus its rule listens on (docs/deploy.md, "Producers").
//
//   dotnet new console -n SendJob && cd SendJob && cp ../SendJob.cs Program.cs
//   dotnet add package AWSSDK.SQS && dotnet add package AWSSDK.EventBridge
//   dotnet run -- sqs <SendQueueUrl>
//   dotnet run -- events <staging|production> [<event bus name, or its ARN from another account>]
//
// Credentials: the producer's own, with only the producer policy of docs/deploy.md.
using System.Security.Cryptography;
using System.Text;
using System.Text.Json;
using System.Text.RegularExpressions;
using Amazon.EventBridge;
using Amazon.EventBridge.Model;
using Amazon.SQS;
using Amazon.SQS.Model;

// The stage's EventBridge contract: its EventSource (one per stage) and EventDetailType outputs.
const string SourcePrefix = "ecourtdate-relay.upstream.";
const string DetailType = "eCourtDate Send Message";

// One job (docs/contract.md, "The send job"); "id" is your system's key for this send.
const string Job = """
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
""";

// One line, as sent.
var job = JsonDocument.Parse(Job).RootElement;
var body = JsonSerializer.Serialize(job);
// The queue's message group: the job's agency_reference, or "default" (docs/contract.md, "Message group").
var group = MessageGroup(
    job.TryGetProperty("agency_reference", out var agency) && agency.ValueKind == JsonValueKind.String
        ? agency.GetString()
        : null);

switch (args)
{
    case ["sqs", var queueUrl]:
    {
        using var sqs = new AmazonSQSClient();
        var sent = await sqs.SendMessageAsync(new SendMessageRequest { QueueUrl = queueUrl, MessageBody = body, MessageGroupId = group });
        Console.WriteLine(sent.MessageId);
        return 0;
    }
    case ["events", var stage, .. var rest] when rest.Length <= 1:
    {
        if (stage is not ("staging" or "production"))
        {
            Console.Error.WriteLine($"stage: expected staging or production, got \"{stage}\"");
            return 2;
        }
        using var events = new AmazonEventBridgeClient();
        var response = await events.PutEventsAsync(new PutEventsRequest
        {
            Entries =
            [
                new PutEventsRequestEntry
                {
                    EventBusName = rest.Length == 1 ? rest[0] : "default",
                    Source = SourcePrefix + stage,
                    DetailType = DetailType,
                    Detail = body,
                },
            ],
        });
        var entry = response.Entries[0];
        // PutEvents answers 200 even when it refuses an entry: the entry says why.
        if (response.FailedEntryCount > 0)
        {
            Console.Error.WriteLine($"not accepted: {entry.ErrorCode}: {entry.ErrorMessage}");
            return 1;
        }
        Console.WriteLine(entry.EventId);
        return 0;
    }
    default:
        Console.Error.WriteLine("usage: SendJob sqs <SendQueueUrl> | SendJob events <staging|production> [event bus]");
        return 2;
}

// A reference SQS refuses as a group (a space, a character outside ASCII, over 128 characters) is percent-encoded
// as the relay does (encodeURIComponent), or named by its SHA-256 when still too long.
static string MessageGroup(string? reference)
{
    var sqsGroup = new Regex(@"^[A-Za-z0-9!""#$%&'()*+,\-./:;<=>?@\[\\\]^_`{|}~]{1,128}\z");
    if (string.IsNullOrWhiteSpace(reference)) return "default";
    if (sqsGroup.IsMatch(reference)) return reference;
    // Uri.EscapeDataString also escapes ! * ' ( ), which encodeURIComponent keeps.
    var encoded = Uri.EscapeDataString(reference)
        .Replace("%21", "!").Replace("%2A", "*").Replace("%27", "'").Replace("%28", "(").Replace("%29", ")");
    if (sqsGroup.IsMatch(encoded)) return encoded;
    return "sha256:" + Convert.ToHexString(SHA256.HashData(Encoding.UTF8.GetBytes(reference))).ToLowerInvariant();
}
