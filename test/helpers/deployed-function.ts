import { join } from 'node:path';
import type { App } from 'aws-cdk-lib';
import type { Template } from 'aws-cdk-lib/assertions';
import { AssetManifestArtifact } from 'aws-cdk-lib/cx-api';

/** A Lambda function as the synthesised template deploys it, with the asset `cdk deploy` uploads for it. */
export interface DeployedFunction {
  readonly logicalId: string;
  /** The asset's directory in the cloud assembly (`asset.<hash>/`), what the function's zip holds. */
  readonly assetDirectory: string;
  /** The template's `Handler`, e.g. `index.handler`. */
  readonly handler: string;
  /** The template's `Runtime`, e.g. `nodejs24.x`. */
  readonly runtime: string;
  /** The template's `Timeout`, seconds. */
  readonly timeoutSeconds: number;
  /** The template's `MemorySize`, MB. */
  readonly memorySizeMb: number;
  /** `Environment.Variables` as the template writes them: strings, `Ref` and `Fn::GetAtt` objects. */
  readonly variables: Readonly<Record<string, unknown>>;
}

/**
 * The function `logicalId` of a synthesised app (`synthRelay(context, { bundle: true })`), with its asset found
 * the way `cdk deploy` publishes it: the function's `Code.S3Key` is an object key of one file asset of the cloud
 * assembly's asset manifest, whose source path is the asset's directory. Throws when the resource is not a
 * Lambda function, its code is not a file asset of the assembly (e.g. a synth without bundling), or a property
 * is missing.
 */
export function deployedFunction(app: App, template: Template, logicalId: string): DeployedFunction {
  const resource = template.toJSON().Resources?.[logicalId] as
    | { Type: string; Properties: Record<string, unknown> }
    | undefined;
  if (resource?.Type !== 'AWS::Lambda::Function') throw new Error(`${logicalId} is not a Lambda function`);
  const props = resource.Properties;
  const objectKey = (props.Code as { S3Key?: unknown } | undefined)?.S3Key;
  if (typeof objectKey !== 'string') throw new Error(`${logicalId}: Code.S3Key is not an asset's object key`);
  const assembly = app.synth();
  const manifests = assembly.artifacts.filter(AssetManifestArtifact.isAssetManifestArtifact);
  const source = manifests
    .flatMap((manifest) => Object.values(manifest.contents.files ?? {}))
    .find((asset) => Object.values(asset.destinations).some((d) => d.objectKey === objectKey))?.source;
  if (source?.path === undefined || source.packaging !== 'zip') {
    throw new Error(`${logicalId}: no directory asset of the cloud assembly is published as ${objectKey}`);
  }
  const text = (name: string): string => {
    const value = props[name];
    if (typeof value !== 'string') throw new Error(`${logicalId}: ${name} is not a string`);
    return value;
  };
  const number = (name: string): number => {
    const value = props[name];
    if (typeof value !== 'number') throw new Error(`${logicalId}: ${name} is not a number`);
    return value;
  };
  return {
    logicalId,
    assetDirectory: join(assembly.directory, source.path),
    handler: text('Handler'),
    runtime: text('Runtime'),
    timeoutSeconds: number('Timeout'),
    memorySizeMb: number('MemorySize'),
    variables: (props.Environment as { Variables?: Record<string, unknown> } | undefined)?.Variables ?? {},
  };
}

/**
 * A resource of the template as it exists locally: what its `Ref` gives (a queue's URL, a table's name, a
 * secret's ARN) and its `Fn::GetAtt` attributes (`Arn`, `QueueName`, ...).
 */
export interface LocalResource {
  readonly ref: string;
  readonly attributes?: Readonly<Record<string, string>>;
}

/**
 * The template's environment variables with every `Ref` and `Fn::GetAtt` replaced by the local resource of that
 * logical id (`resources`); strings stay as they are. Throws an `Error` naming the variable (and what it
 * references) for any value it cannot resolve: a reference to a resource with no local stand-in, an attribute
 * it lacks, or another intrinsic function.
 */
export function resolveEnvironment(
  variables: Readonly<Record<string, unknown>>,
  resources: Readonly<Record<string, LocalResource>>,
): Record<string, string> {
  const resolve = (name: string, value: unknown): string => {
    if (typeof value === 'string') return value;
    const ref = (value as { Ref?: unknown } | null)?.Ref;
    if (typeof ref === 'string' && resources[ref]) return resources[ref].ref;
    const getAtt = (value as { 'Fn::GetAtt'?: unknown } | null)?.['Fn::GetAtt'];
    if (Array.isArray(getAtt) && typeof getAtt[0] === 'string' && typeof getAtt[1] === 'string') {
      const attribute = resources[getAtt[0]]?.attributes?.[getAtt[1]];
      if (attribute !== undefined) return attribute;
    }
    throw new Error(`${name}: ${JSON.stringify(value)} has no local resource to resolve it to`);
  };
  return Object.fromEntries(Object.entries(variables).map(([name, value]) => [name, resolve(name, value)]));
}
