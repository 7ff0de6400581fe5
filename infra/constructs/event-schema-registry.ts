import * as eventschemas from 'aws-cdk-lib/aws-eventschemas';
import { Construct } from 'constructs';
import { EVENT_SCHEMA_FILES, readSchema, readSchemaText } from '#infra/event-schemas.ts';

export interface EventSchemaRegistryProps {
  /** The registry's physical name: one per stage, so that both stages can share an account and region. */
  readonly registryName: string;
  readonly stage: string;
}

/**
 * An EventBridge schema registry holding the event contract: the send job and every event the relay publishes,
 * each registered as it is in `schemas/` (type `JSONSchemaDraft4`), read at synth (docs/contract.md, "The event
 * contract"). Producers and consumers download code bindings or the schemas from it; nothing reads it at run
 * time, so no role is granted anything on it.
 */
export class EventSchemaRegistry extends Construct {
  readonly registry: eventschemas.CfnRegistry;
  readonly schemas: readonly eventschemas.CfnSchema[];

  constructor(scope: Construct, id: string, props: EventSchemaRegistryProps) {
    super(scope, id);
    this.registry = new eventschemas.CfnRegistry(this, 'Registry', {
      registryName: props.registryName,
      description: `eCourtDate relay (${props.stage}): the send job and the events the relay publishes`,
    });
    this.schemas = EVENT_SCHEMA_FILES.map((entry) => {
      const title = readSchema(entry.file).title;
      return new eventschemas.CfnSchema(this, entry.schemaName.replace(/[^A-Za-z0-9]/g, ''), {
        registryName: this.registry.attrRegistryName,
        schemaName: entry.schemaName,
        type: 'JSONSchemaDraft4',
        content: readSchemaText(entry.file),
        description: `${entry.detailType}${typeof title === 'string' && title !== entry.detailType ? `: ${title}` : ''} (schemas/${entry.file})`,
      });
    });
  }
}
