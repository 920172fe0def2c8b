import { ArnFormat, CfnOutput, Duration, Size, Stack, type StackProps } from 'aws-cdk-lib';
import { AttributeType, Billing, TableV2, type ITableV2 } from 'aws-cdk-lib/aws-dynamodb';
import { PolicyStatement, Role, ServicePrincipal } from 'aws-cdk-lib/aws-iam';
import { FunctionUrlAuthType, InvokeMode, Runtime, type FunctionUrl, type LayerVersion } from 'aws-cdk-lib/aws-lambda';
import { NodejsFunction } from 'aws-cdk-lib/aws-lambda-nodejs';
import { LogGroup, type RetentionDays } from 'aws-cdk-lib/aws-logs';
import { Bucket, type CfnBucket } from 'aws-cdk-lib/aws-s3';
import type { Construct } from 'constructs';
import { join } from 'node:path';
import { GATEWAY_CONFIG_ENV } from '../src/adapters/gateway-function-config.js';
import { modelPackagePrefix } from '../src/models/s3-store.js';
import { tableSchema, type TableSchema } from '../src/store/table-schema.js';
import type { DeployConfig, LambdaArchitecture } from './deploy-config.js';
import { EDGE_LOG_GROUP_NAME } from './edge-origin-selector.js';
import { functionBundling } from './function-bundling.js';
import { GATEWAY_ENV, MODEL_CACHE_DIR, MODEL_ENV } from './function-env.js';
import { GATEWAY_SERVICE_NAME, METRIC_NAMESPACE, MODEL_SERVICE_NAME } from '../src/telemetry/metric-names.js';
import { GatewayAlarms, GatewayDashboard } from './monitoring.js';
import { lambdaArchitecture, onnxruntimeLayer } from './onnxruntime-layer.js';
import { ORIGIN_SECRET_NAME } from './origin-protection.js';
import { acknowledge, acknowledgeFunction } from './rule-packs.js';
import { EDGE_REGION } from './stack-names.js';
import { DATA_REMOVAL_POLICY, logBucket, privateBucketProps } from './storage.js';

/**
 * The DynamoDB actions the gateway's code issues (GetCommand, PutCommand, UpdateCommand), and
 * nothing else: test/infra/dynamodb-grants.test.ts fails when its bundle and this list drift.
 */
export const GATEWAY_TABLE_ACTIONS = ['dynamodb:BatchWriteItem', 'dynamodb:GetItem', 'dynamodb:PutItem', 'dynamodb:Query', 'dynamodb:UpdateItem'] as const;

/** Source files of the two Lambda entry points (tests may point them elsewhere). */
export interface FunctionEntries {
  readonly gateway: string;
  readonly model: string;
}

export interface RegionalStackProps extends StackProps {
  readonly config: DeployConfig;
  readonly entries: FunctionEntries;
  /** Repository root: esbuild runs there and package-lock.json pins the bundled versions. */
  readonly projectRoot: string;
}

/** Lambda's limit on all environment variables of a function together. */
const LAMBDA_ENVIRONMENT_LIMIT_BYTES = 4096;
// As long as a deployed function URL: the real ones are only known at deploy time.
const FUNCTION_URL_SAMPLE = 'https://abcdefghijklmnopqrstuvwxyz012345.lambda-url.ap-southeast-2.on.aws/';

/** Fails the synth, not the deploy, when the gateway's environment would not fit Lambda's limit. */
function assertEnvironmentFits(config: DeployConfig, modelEntriesJson: string): void {
  const fixed = 600; // names and the short values (table name, secret id, Powertools settings)
  const bytes = fixed + Buffer.byteLength(modelEntriesJson) + Buffer.byteLength(config.gatewayToml);
  if (bytes > LAMBDA_ENVIRONMENT_LIMIT_BYTES) {
    throw new RangeError(
      `the gateway function's environment would need about ${bytes} bytes (Lambda allows ${LAMBDA_ENVIRONMENT_LIMIT_BYTES}): ` +
        'deploy fewer models per region or trim aigw.toml (plans, cache and admission settings travel in AIGW_CONFIG)',
    );
  }
}

function attributeType(type: TableSchema['partitionKey']['type']): AttributeType {
  switch (type) {
    case 'S':
      return AttributeType.STRING;
  }
}

function billing(mode: TableSchema['billingMode']): Billing {
  switch (mode) {
    case 'PAY_PER_REQUEST':
      return Billing.onDemand();
  }
}

/**
 * Everything aigw runs in one region: the model bucket, the table (owned by the primary region's
 * stack and replicated to the others), the gateway function and one function per model.
 */
export class RegionalStack extends Stack {
  readonly isPrimary: boolean;
  readonly modelBucket: Bucket;
  readonly table: ITableV2;
  readonly gateway: NodejsFunction;
  readonly gatewayUrl: FunctionUrl;
  readonly modelFunctions: ReadonlyMap<string, { fn: NodejsFunction; url: FunctionUrl }>;
  readonly alarms: GatewayAlarms;

  constructor(scope: Construct, id: string, props: RegionalStackProps) {
    super(scope, id, props);
    const { config, entries, projectRoot } = props;
    this.isPrimary = this.region === config.regions[0];
    const depsLockFilePath = join(projectRoot, 'package-lock.json');

    // Versioned so an accidental overwrite or delete of a serving model can be undone; packages
    // are immutable per version, so old versions only pile up after such accidents and expire.
    const accessLogs = logBucket(this, 'AccessLogs', config.logRetentionDays);
    this.modelBucket = new Bucket(this, 'ModelBucket', {
      ...privateBucketProps(),
      versioned: true,
      lifecycleRules: [
        { noncurrentVersionExpiration: Duration.days(30), abortIncompleteMultipartUploadAfter: Duration.days(7) },
      ],
      serverAccessLogsBucket: accessLogs,
      serverAccessLogsPrefix: 'model-bucket/',
    });

    this.table = this.declareTable(config);

    const logGroup = (logId: string, logGroupName?: string) =>
      new LogGroup(this, logId, {
        logGroupName,
        retention: config.logRetentionDays as RetentionDays,
        removalPolicy: DATA_REMOVAL_POLICY,
      });
    // Each function's own role, allowed to write its own log group only (no AWS managed policy,
    // whose logs:* on every group in the account is more than a function needs).
    const functionRole = (roleId: string, logs: LogGroup) => {
      const role = new Role(this, roleId, { assumedBy: new ServicePrincipal('lambda.amazonaws.com') });
      logs.grantWrite(role);
      return role;
    };
    // Lambda@Edge writes the origin selector's logs in the region it runs in; this region's group
    // exists up front, with its retention (us-east-1's is the edge stack's). README "Logs, …".
    if (config.regions.length > 1 && this.region !== EDGE_REGION) {
      logGroup('OriginSelectorLogs', EDGE_LOG_GROUP_NAME);
    }

    const gatewayLogs = logGroup('GatewayLogs');
    const longestModelTimeout = Math.max(0, ...config.models.map((model) => model.timeoutSeconds));
    this.gateway = new NodejsFunction(this, 'Gateway', {
      entry: entries.gateway,
      handler: 'handler',
      projectRoot,
      depsLockFilePath,
      runtime: Runtime.NODEJS_22_X,
      architecture: lambdaArchitecture(config.architecture),
      memorySize: 1024,
      // A streamed answer lasts as long as the slowest model's; function URLs stream for 15 min at most.
      timeout: Duration.seconds(Math.min(900, Math.max(60, longestModelTimeout + 30))),
      // Bounds what calls around CloudFront take from the region's pool (README "Calls around CloudFront").
      reservedConcurrentExecutions: config.gatewayReservedConcurrency,
      logGroup: gatewayLogs,
      role: functionRole('GatewayRole', gatewayLogs),
      // Guardrail word lists ride in the code bundle (guardrails/<rule>.txt), not in AIGW_CONFIG.
      bundling: functionBundling('gateway', config.gatewayWordLists),
      environment: {
        [GATEWAY_ENV.tableName]: this.table.tableName,
        [GATEWAY_ENV.originSecretId]: ORIGIN_SECRET_NAME,
        POWERTOOLS_SERVICE_NAME: GATEWAY_SERVICE_NAME,
        POWERTOOLS_METRICS_NAMESPACE: METRIC_NAMESPACE,
        NODE_OPTIONS: '--enable-source-maps',
      },
    });
    // NONE: CloudFront can't SigV4-sign viewers' POST bodies; the origin secret header guards it.
    this.gatewayUrl = this.gateway.addFunctionUrl({
      authType: FunctionUrlAuthType.NONE,
      invokeMode: InvokeMode.RESPONSE_STREAM,
    });
    this.table.grant(this.gateway, ...GATEWAY_TABLE_ACTIONS);
    acknowledgeFunction(this.gateway);
    this.sendLimitsToPrimary(config);
    this.gateway.addToRolePolicy(
      new PolicyStatement({
        actions: ['secretsmanager:GetSecretValue'],
        // The local replica of the edge stack's secret; "-??????" is the suffix Secrets Manager adds.
        resources: [
          this.formatArn({
            service: 'secretsmanager',
            resource: 'secret',
            resourceName: `${ORIGIN_SECRET_NAME}-??????`,
            arnFormat: ArnFormat.COLON_RESOURCE_NAME,
          }),
        ],
      }),
    );

    this.grantUpstreamKeys(config);

    const layers = new Map<LambdaArchitecture, LayerVersion>();
    const layerFor = (architecture: LambdaArchitecture) => {
      let layer = layers.get(architecture);
      if (!layer) {
        layer = onnxruntimeLayer(this, `OnnxruntimeLayer-${architecture}`, architecture);
        layers.set(architecture, layer);
      }
      return layer;
    };

    const modelFunctions = new Map<string, { fn: NodejsFunction; url: FunctionUrl }>();
    for (const model of config.models) {
      const key = `${model.name}@${model.version}`;
      const constructId = `Model-${model.name}-${model.version}`;
      const modelLogs = logGroup(`${constructId}-Logs`);
      const fn = new NodejsFunction(this, constructId, {
        entry: entries.model,
        handler: 'handler',
        projectRoot,
        depsLockFilePath,
        runtime: Runtime.NODEJS_22_X,
        architecture: lambdaArchitecture(model.architecture),
        memorySize: model.memoryMb,
        ephemeralStorageSize: Size.mebibytes(model.ephemeralStorageMb),
        timeout: Duration.seconds(model.timeoutSeconds),
        reservedConcurrentExecutions: model.reservedConcurrency,
        layers: [layerFor(model.architecture)],
        logGroup: modelLogs,
        role: functionRole(`${constructId}-Role`, modelLogs),
        bundling: functionBundling('model'),
        environment: {
          [MODEL_ENV.bucket]: this.modelBucket.bucketName,
          [MODEL_ENV.name]: model.name,
          [MODEL_ENV.version]: model.version,
          [MODEL_ENV.cacheDir]: MODEL_CACHE_DIR,
          POWERTOOLS_SERVICE_NAME: MODEL_SERVICE_NAME,
          POWERTOOLS_METRICS_NAMESPACE: METRIC_NAMESPACE,
          NODE_OPTIONS: '--enable-source-maps',
        },
      });
      const url = fn.addFunctionUrl({ authType: FunctionUrlAuthType.AWS_IAM, invokeMode: InvokeMode.RESPONSE_STREAM });
      url.grantInvokeUrl(this.gateway);

      // Read-only, and only this model's own prefix: no grantRead, which would open the whole bucket.
      const prefix = modelPackagePrefix(model.name, model.version);
      fn.addToRolePolicy(
        new PolicyStatement({ actions: ['s3:GetObject'], resources: [this.modelBucket.arnForObjects(`${prefix}*`)] }),
      );
      fn.addToRolePolicy(
        new PolicyStatement({
          actions: ['s3:ListBucket'],
          resources: [this.modelBucket.bucketArn],
          conditions: { StringLike: { 's3:prefix': [`${prefix}*`] } },
        }),
      );
      acknowledge(fn.role!, `AwsSolutions-IAM5[Resource::<${this.getLogicalId(this.modelBucket.node.defaultChild as CfnBucket)}.Arn>/${prefix}*]`,
        'a model package is every object under its own models/<name>/<version>/ prefix, and nothing else');
      acknowledgeFunction(fn);
      modelFunctions.set(key, { fn, url });
      new CfnOutput(this, `${constructId}-Url`, { value: url.url, description: `function URL of model ${key}` });
    }
    this.modelFunctions = modelFunctions;

    // Each entry: where the model function is, and what admission must know before calling it.
    const modelEntries = (urlOf: (key: string) => string) =>
      config.models.map((model) => ({
        name: model.name,
        version: model.version,
        url: urlOf(`${model.name}@${model.version}`),
        contextLength: model.contextLength,
        price: model.price,
        ...(model.maxTokens === undefined ? {} : { maxTokens: model.maxTokens }),
        ...(model.maxConcurrentRequests === undefined ? {} : { maxConcurrentRequests: model.maxConcurrentRequests }),
      }));
    this.gateway.addEnvironment(
      GATEWAY_ENV.modelFunctionUrls,
      this.toJsonString(modelEntries((key) => modelFunctions.get(key)!.url.url)),
    );
    if (config.gatewayToml !== '') this.gateway.addEnvironment(GATEWAY_CONFIG_ENV, config.gatewayToml);
    assertEnvironmentFits(config, JSON.stringify(modelEntries(() => FUNCTION_URL_SAMPLE)));

    this.alarms = new GatewayAlarms(this, 'Alarms', { config });
    if (this.isPrimary) new GatewayDashboard(this, 'Dashboard', { config, alarms: this.alarms.all });

    new CfnOutput(this, 'GatewayUrl', { value: this.gatewayUrl.url, description: 'gateway function URL (call it through CloudFront)' });
    new CfnOutput(this, 'ModelBucketName', { value: this.modelBucket.bucketName, description: 'push models here (AIGW_MODEL_BUCKET)' });
    new CfnOutput(this, 'TableName', { value: this.table.tableName });
    new CfnOutput(this, 'AccessLogBucketName', { value: accessLogs.bucketName, description: 'model bucket access logs (model-bucket/)' });
  }

  /** The [[models]] upstreams' API keys: each secret by name (plus Secrets Manager's suffix) or ARN. */
  private grantUpstreamKeys(config: DeployConfig): void {
    if (config.upstreamKeySecrets.length === 0) return;
    const arnOf = (secret: string) =>
      secret.startsWith('arn:')
        ? secret
        : this.formatArn({ service: 'secretsmanager', resource: 'secret', resourceName: `${secret}-??????`, arnFormat: ArnFormat.COLON_RESOURCE_NAME });
    this.gateway.addToRolePolicy(new PolicyStatement({ actions: ['secretsmanager:GetSecretValue'], resources: config.upstreamKeySecrets.map(arnOf) }));
  }

  /**
   * Global tables replicate last-writer-wins, so admission writes all go to the primary region's
   * replica (the others differ only by region in their ARN) for limits exact across regions.
   */
  private sendLimitsToPrimary(config: DeployConfig): void {
    if (this.isPrimary || !config.limitsInPrimaryRegion) return;
    const primaryRegion = config.regions[0]!;
    this.gateway.addEnvironment(GATEWAY_ENV.limitsRegion, primaryRegion);
    const primaryTableArn = this.formatArn({
      service: 'dynamodb',
      region: primaryRegion,
      resource: 'table',
      resourceName: tableSchema().tableName,
    });
    // The same actions as the local grant, on that one table ARN.
    TableV2.fromTableArn(this, 'PrimaryTable', primaryTableArn).grant(this.gateway, ...GATEWAY_TABLE_ACTIONS);
  }

  private declareTable(config: DeployConfig): ITableV2 {
    const schema = tableSchema();
    if (!this.isPrimary) {
      // The primary region's stack creates this region's replica; this stack only uses it.
      return TableV2.fromTableName(this, 'Table', schema.tableName);
    }
    return new TableV2(this, 'Table', {
      tableName: schema.tableName,
      partitionKey: { name: schema.partitionKey.name, type: attributeType(schema.partitionKey.type) },
      sortKey: { name: schema.sortKey.name, type: attributeType(schema.sortKey.type) },
      timeToLiveAttribute: schema.ttlAttribute,
      billing: billing(schema.billingMode),
      pointInTimeRecoverySpecification: { pointInTimeRecoveryEnabled: true },
      replicas: config.regions.slice(1).map((region) => ({ region })),
      removalPolicy: DATA_REMOVAL_POLICY,
    });
  }
}
