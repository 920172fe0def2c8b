import { Match, type Template } from 'aws-cdk-lib/assertions';
import type { TableV2 } from 'aws-cdk-lib/aws-dynamodb';
import { beforeAll, describe, expect, it } from 'vitest';
import { GATEWAY_ENV, MODEL_ENV } from '../../infra/function-env.js';
import { GATEWAY_CONFIG_ENV } from '../../src/adapters/gateway-function-config.js';
import { GATEWAY_SERVICE_NAME, METRIC, METRIC_NAMESPACE } from '../../src/telemetry/metric-names.js';
import { ORIGIN_SECRET_HEADER, ORIGIN_SECRET_NAME } from '../../infra/origin-protection.js';
import type { RegionalStack } from '../../infra/regional-stack.js';
import { tableSchema } from '../../src/store/table-schema.js';
import {
  actionsOf,
  fixtureEntries,
  functionProperties,
  logicalId,
  MODEL_PRICING,
  roleStatements,
  synthAigw,
  type SynthesizedApp,
} from './synth-app.js';

// One region, two models (one overriding the architecture), every other setting by default.
let synth: SynthesizedApp;
let stack: RegionalStack;
let template: Template;

beforeAll(() => {
  synth = synthAigw({
    regions: ['eu-west-1'],
    alarm_email: 'ops@example.com',
    daily_spend_alarm_usd: 25,
    models: [
      {
        name: 'llama',
        version: '3',
        memory_mb: 6144,
        ephemeral_storage_mb: 8192,
        timeout_seconds: 600,
        reserved_concurrency: 3,
        context_length: 8192,
        input_usd_per_million_tokens: '0.15',
        output_usd_per_million_tokens: 0.6,
        max_tokens: 512,
      },
      { name: 'tiny', version: '1', architecture: 'x86_64', memory_mb: 2048, ...MODEL_PRICING },
    ],
  }, fixtureEntries, { gatewayToml: '[cache]\nttl = 60\n' }, { rulePacks: true });
  stack = synth.stacks.regional[0]!;
  template = synth.template(stack);
});

const model = (key: string) => stack.modelFunctions.get(key)!;

describe('model bucket', () => {
  it('is encrypted, private, TLS-only and versioned with expiring old versions', () => {
    // The model bucket and the bucket receiving its server access logs.
    template.resourceCountIs('AWS::S3::Bucket', 2);
    template.hasResourceProperties('AWS::S3::Bucket', {
      BucketEncryption: {
        ServerSideEncryptionConfiguration: [{ ServerSideEncryptionByDefault: { SSEAlgorithm: 'AES256' } }],
      },
      PublicAccessBlockConfiguration: {
        BlockPublicAcls: true,
        BlockPublicPolicy: true,
        IgnorePublicAcls: true,
        RestrictPublicBuckets: true,
      },
      VersioningConfiguration: { Status: 'Enabled' },
      LifecycleConfiguration: {
        Rules: Match.arrayWith([Match.objectLike({ NoncurrentVersionExpiration: { NoncurrentDays: 30 } })]),
      },
    });
    template.hasResourceProperties('AWS::S3::BucketPolicy', {
      PolicyDocument: {
        Statement: Match.arrayWith([
          Match.objectLike({
            Effect: 'Deny',
            Action: 's3:*',
            Condition: { Bool: { 'aws:SecureTransport': 'false' } },
          }),
        ]),
      },
    });
  });
});

describe('access logs', () => {
  it('the model bucket logs every access to a private, encrypted bucket that expires the logs after 180 days', () => {
    const modelBucket = template.findResources('AWS::S3::Bucket')[logicalId(stack.modelBucket)]!;
    const target = (modelBucket.Properties as { LoggingConfiguration: { DestinationBucketName: { Ref: string }; LogFilePrefix: string } })
      .LoggingConfiguration;
    expect(target.LogFilePrefix).toBe('model-bucket/');
    const logBucket = template.findResources('AWS::S3::Bucket')[target.DestinationBucketName.Ref]!;
    expect(logBucket.Properties).toMatchObject({
      BucketEncryption: { ServerSideEncryptionConfiguration: [{ ServerSideEncryptionByDefault: { SSEAlgorithm: 'AES256' } }] },
      PublicAccessBlockConfiguration: { BlockPublicAcls: true, BlockPublicPolicy: true, IgnorePublicAcls: true, RestrictPublicBuckets: true },
      LifecycleConfiguration: { Rules: [expect.objectContaining({ ExpirationInDays: 180, Status: 'Enabled' })] },
    });
  });

  it('CloudFront writes standard logs to an encrypted, private bucket that expires them after 180 days', () => {
    const edge = synth.template(synth.stacks.edge);
    const distribution = Object.values(edge.findResources('AWS::CloudFront::Distribution'))[0]!;
    const logging = (distribution.Properties as { DistributionConfig: { Logging: { Bucket: { 'Fn::GetAtt': [string, string] }; Prefix: string } } })
      .DistributionConfig.Logging;
    expect(logging.Prefix).toBe('cloudfront/');
    const bucket = edge.findResources('AWS::S3::Bucket')[logging.Bucket['Fn::GetAtt'][0]]!;
    expect(bucket.Properties).toMatchObject({
      BucketEncryption: { ServerSideEncryptionConfiguration: [{ ServerSideEncryptionByDefault: { SSEAlgorithm: 'AES256' } }] },
      PublicAccessBlockConfiguration: { BlockPublicAcls: true, BlockPublicPolicy: true, IgnorePublicAcls: true, RestrictPublicBuckets: true },
      // CloudFront delivers standard logs with an ACL grant, which BucketOwnerEnforced would refuse.
      OwnershipControls: { Rules: [{ ObjectOwnership: 'BucketOwnerPreferred' }] },
      LifecycleConfiguration: { Rules: [expect.objectContaining({ ExpirationInDays: 180, Status: 'Enabled' })] },
    });
  });
});

describe('table', () => {
  it('is declared from the schema in src/store, on demand, with TTL and point-in-time recovery', () => {
    const schema = tableSchema();
    template.resourceCountIs('AWS::DynamoDB::GlobalTable', 1);
    template.hasResourceProperties('AWS::DynamoDB::GlobalTable', {
      TableName: schema.tableName,
      BillingMode: schema.billingMode,
      KeySchema: [
        { AttributeName: schema.partitionKey.name, KeyType: 'HASH' },
        { AttributeName: schema.sortKey.name, KeyType: 'RANGE' },
      ],
      AttributeDefinitions: [
        { AttributeName: schema.partitionKey.name, AttributeType: schema.partitionKey.type },
        { AttributeName: schema.sortKey.name, AttributeType: schema.sortKey.type },
      ],
      TimeToLiveSpecification: { AttributeName: schema.ttlAttribute, Enabled: true },
      // One region: the only replica is the table itself.
      Replicas: [{ Region: 'eu-west-1', PointInTimeRecoverySpecification: { PointInTimeRecoveryEnabled: true } }],
    });
  });

});

describe('data survives a delete, and a failed first deploy can be retried', () => {
  // RetainExceptOnCreate: kept on stack deletion and replacement, removed when the stack's
  // creation rolls back, so the retry does not fail on the fixed-name table or log groups.
  const DATA_TYPES = ['AWS::DynamoDB::GlobalTable', 'AWS::S3::Bucket', 'AWS::Logs::LogGroup'];

  it.each(DATA_TYPES)('every %s of the regional stack is RetainExceptOnCreate, and kept on replacement', (type) => {
    const resources = Object.values(template.findResources(type));
    expect(resources.length).toBeGreaterThan(0);
    for (const resource of resources) {
      expect(resource).toMatchObject({ DeletionPolicy: 'RetainExceptOnCreate', UpdateReplacePolicy: 'Retain' });
    }
  });

  it('and so is every bucket and log group of the edge stack, also with several regions', () => {
    const wide = synthAigw({ regions: ['eu-west-1', 'ap-northeast-1'], models: [{ name: 'm', version: '1', ...MODEL_PRICING }] });
    const templates = [wide.template(wide.stacks.edge), ...wide.stacks.regional.map((regional) => wide.template(regional))];
    let count = 0;
    for (const each of templates) {
      for (const type of DATA_TYPES) {
        for (const resource of Object.values(each.findResources(type))) {
          expect(resource).toMatchObject({ DeletionPolicy: 'RetainExceptOnCreate', UpdateReplacePolicy: 'Retain' });
          count += 1;
        }
      }
    }
    // Edge: origin selector logs, CloudFront log bucket. Each region: gateway and model logs,
    // model bucket, its access log bucket, origin selector logs; the primary also the table.
    expect(count).toBe(2 + 2 * 5 + 1);
  });
});

describe('functions', () => {
  it('all run nodejs22.x', () => {
    const runtimes = Object.values(template.findResources('AWS::Lambda::Function')).map(
      (resource) => (resource.Properties as { Runtime: string }).Runtime,
    );
    expect(runtimes).toHaveLength(3);
    expect(new Set(runtimes)).toEqual(new Set(['nodejs22.x']));
  });

  it('gateway: arm64 by default, no layer, streaming URL without IAM auth', () => {
    const gateway = functionProperties(template, stack.gateway);
    expect(gateway.Architectures).toEqual(['arm64']);
    expect(gateway.ReservedConcurrentExecutions).toBeUndefined();
    expect(gateway.Layers).toBeUndefined();
    // Longest model timeout (600 s) plus a margin for the stream's tail.
    expect(gateway.Timeout).toBe(630);
    template.hasResourceProperties('AWS::Lambda::Url', {
      TargetFunctionArn: { 'Fn::GetAtt': [logicalId(stack.gateway), 'Arn'] },
      AuthType: 'NONE',
      InvokeMode: 'RESPONSE_STREAM',
    });
  });

  it('gateway environment names the table, the origin secret, the model URLs and the metrics namespace', () => {
    const variables = functionProperties(template, stack.gateway).Environment.Variables as Record<string, unknown>;
    // In the primary region the table is created here, so the name comes as a reference to it.
    expect(variables[GATEWAY_ENV.tableName]).toEqual({ Ref: logicalId(stack.table as TableV2) });
    expect(variables[GATEWAY_ENV.originSecretId]).toBe(ORIGIN_SECRET_NAME);
    expect(variables.POWERTOOLS_SERVICE_NAME).toBe(GATEWAY_SERVICE_NAME);
    expect(variables.POWERTOOLS_METRICS_NAMESPACE).toBe(METRIC_NAMESPACE);
    const urls = JSON.stringify(variables[GATEWAY_ENV.modelFunctionUrls]);
    for (const key of ['llama@3', 'tiny@1']) {
      expect(urls).toContain(logicalId(model(key).url));
    }
    expect(urls).toContain('\\"name\\":\\"llama\\",\\"version\\":\\"3\\"');
    // What admission needs before calling a model: its context length, exact price and default length.
    expect(urls).toContain(
      '\\"contextLength\\":8192,\\"price\\":{\\"inputMicrosPerMillionTokens\\":150000,\\"outputMicrosPerMillionTokens\\":600000},\\"maxTokens\\":512,\\"maxConcurrentRequests\\":3',
    );
    expect(variables[GATEWAY_CONFIG_ENV]).toBe('[cache]\nttl = 60\n');
  });

  it('fail the synth when the gateway environment would exceed Lambda\'s 4 KB', () => {
    const models = Array.from({ length: 20 }, (_, index) => ({ name: `model-${index}`, version: '1', ...MODEL_PRICING }));
    expect(() => synthAigw({ regions: ['eu-west-1'], models })).toThrow(/environment would need about \d+ bytes \(Lambda allows 4096\)/);
  });

  it('model functions take memory, ephemeral storage, timeout, concurrency and architecture from config', () => {
    const llama = functionProperties(template, model('llama@3').fn);
    expect(llama).toMatchObject({
      MemorySize: 6144,
      EphemeralStorage: { Size: 8192 },
      Timeout: 600,
      ReservedConcurrentExecutions: 3,
      Architectures: ['arm64'],
    });
    const tiny = functionProperties(template, model('tiny@1').fn);
    expect(tiny).toMatchObject({
      MemorySize: 2048,
      EphemeralStorage: { Size: 4096 },
      Timeout: 300,
      Architectures: ['x86_64'],
    });
    // reserved_concurrency left out: no reservation, so a new account's quota of 10 can deploy it.
    expect(tiny.ReservedConcurrentExecutions).toBeUndefined();
  });

  it('model functions load onnxruntime from the layer of their own architecture', () => {
    const layers = template.findResources('AWS::Lambda::LayerVersion');
    const architectureOf = (ref: unknown) => {
      const id = (ref as { Ref: string }).Ref;
      return (layers[id]!.Properties as { CompatibleArchitectures: string[] }).CompatibleArchitectures;
    };
    expect(Object.keys(layers)).toHaveLength(2);
    const llamaLayers = functionProperties(template, model('llama@3').fn).Layers as unknown[];
    const tinyLayers = functionProperties(template, model('tiny@1').fn).Layers as unknown[];
    expect(llamaLayers.map(architectureOf)).toEqual([['arm64']]);
    expect(tinyLayers.map(architectureOf)).toEqual([['x86_64']]);
  });

  it('model functions: streaming URLs with IAM auth, and their package coordinates in the environment', () => {
    for (const [key, { fn, url }] of stack.modelFunctions) {
      template.hasResourceProperties('AWS::Lambda::Url', {
        TargetFunctionArn: { 'Fn::GetAtt': [logicalId(fn), 'Arn'] },
        AuthType: 'AWS_IAM',
        InvokeMode: 'RESPONSE_STREAM',
      });
      expect(logicalId(url)).toBeTruthy();
      const variables = functionProperties(template, fn).Environment.Variables as Record<string, unknown>;
      const [name, version] = key.split('@');
      expect(variables[MODEL_ENV.name]).toBe(name);
      expect(variables[MODEL_ENV.version]).toBe(version);
      expect(variables[MODEL_ENV.bucket]).toEqual({ Ref: logicalId(stack.modelBucket) });
    }
  });

  it('log to their own log groups kept 180 days by default', () => {
    const groups = template.findResources('AWS::Logs::LogGroup');
    expect(Object.keys(groups)).toHaveLength(3);
    for (const group of Object.values(groups)) {
      expect((group.Properties as { RetentionInDays: number }).RetentionInDays).toBe(180);
    }
    for (const fn of [stack.gateway, model('llama@3').fn, model('tiny@1').fn]) {
      const groupRef = functionProperties(template, fn).LoggingConfig.LogGroup as { Ref: string };
      expect(Object.keys(groups)).toContain(groupRef.Ref);
    }
  });
});

describe('least privilege', () => {
  it('the gateway reads and writes the table and invokes the model URLs, but has no S3 access', () => {
    const statements = roleStatements(template, stack.gateway);
    const actions = actionsOf(statements);
    expect(actions.filter((action) => action.startsWith('s3:'))).toEqual([]);
    expect(JSON.stringify(statements)).not.toContain(logicalId(stack.modelBucket));
    expect(actions).toEqual(expect.arrayContaining(['dynamodb:GetItem', 'dynamodb:PutItem', 'dynamodb:UpdateItem']));
    const invokeUrl = statements.filter((statement) => statement.Action === 'lambda:InvokeFunctionUrl');
    expect(invokeUrl.flatMap((statement) => statement.Resource as unknown[])).toEqual(
      expect.arrayContaining(
        [...stack.modelFunctions.values()].map(({ fn }) => ({ 'Fn::GetAtt': [logicalId(fn), 'Arn'] })),
      ),
    );
    for (const statement of invokeUrl) {
      expect(statement.Condition).toEqual({ StringEquals: { 'lambda:FunctionUrlAuthType': 'AWS_IAM' } });
    }
  });

  it('the gateway reads only the origin secret, from its own region', () => {
    const secretStatements = roleStatements(template, stack.gateway).filter((statement) =>
      actionsOf([statement]).some((action) => action.startsWith('secretsmanager:')),
    );
    expect(secretStatements).toHaveLength(1);
    expect(secretStatements[0]!.Action).toBe('secretsmanager:GetSecretValue');
    expect(secretStatements[0]!.Resource).toEqual({
      'Fn::Join': ['', ['arn:aws:secretsmanager:eu-west-1:', { Ref: 'AWS::AccountId' }, `:secret:${ORIGIN_SECRET_NAME}-??????`]],
    });
  });

  it('a model function reads only its own prefix of the bucket and never touches DynamoDB', () => {
    for (const [key, { fn }] of stack.modelFunctions) {
      const [name, version] = key.split('@');
      const statements = roleStatements(template, fn).filter((statement) => !actionsOf([statement])[0]!.startsWith('logs:'));
      const actions = actionsOf(statements);
      expect(actions.filter((action) => action.startsWith('dynamodb:'))).toEqual([]);
      expect(new Set(actions)).toEqual(new Set(['s3:GetObject', 's3:ListBucket']));
      const getObject = statements.find((statement) => statement.Action === 's3:GetObject')!;
      expect(getObject.Resource).toEqual({
        'Fn::Join': ['', [{ 'Fn::GetAtt': [logicalId(stack.modelBucket), 'Arn'] }, `/models/${name}/${version}/*`]],
      });
      const list = statements.find((statement) => statement.Action === 's3:ListBucket')!;
      expect(list.Condition).toEqual({ StringLike: { 's3:prefix': [`models/${name}/${version}/*`] } });
    }
  });
});

describe('function roles', () => {
  it('carry no AWS managed policy, and each writes only its own log group', () => {
    for (const fn of [stack.gateway, model('llama@3').fn, model('tiny@1').fn]) {
      const role = template.findResources('AWS::IAM::Role')[logicalId(fn.role!.node.defaultChild as never)]!;
      expect((role.Properties as { ManagedPolicyArns?: unknown }).ManagedPolicyArns).toBeUndefined();
      const logs = roleStatements(template, fn).filter((statement) => actionsOf([statement]).some((action) => action.startsWith('logs:')));
      const groupRef = functionProperties(template, fn).LoggingConfig.LogGroup as { Ref: string };
      expect(logs).toEqual([
        expect.objectContaining({
          Action: ['logs:CreateLogStream', 'logs:PutLogEvents'],
          Resource: { 'Fn::GetAtt': [groupRef.Ref, 'Arn'] },
        }),
      ]);
    }
  });
});

describe('alarms and dashboard', () => {
  it('send to an SNS topic with the configured e-mail subscription', () => {
    template.resourceCountIs('AWS::SNS::Topic', 1);
    template.hasResourceProperties('AWS::SNS::Subscription', {
      Protocol: 'email',
      Endpoint: 'ops@example.com',
      TopicArn: { Ref: logicalId(stack.alarms.topic) },
    });
  });

  it('alarm on the daily gateway spend above the configured threshold', () => {
    template.hasResourceProperties('AWS::CloudWatch::Alarm', {
      Namespace: METRIC_NAMESPACE,
      MetricName: METRIC.costMicroUsd,
      Dimensions: [{ Name: 'service', Value: GATEWAY_SERVICE_NAME }],
      Statistic: 'Sum',
      Period: 86_400,
      Threshold: 25_000_000,
      ComparisonOperator: 'GreaterThanThreshold',
      TreatMissingData: 'notBreaching',
      AlarmActions: [{ Ref: logicalId(stack.alarms.topic) }],
    });
  });

  it('alarm on every key budget threshold crossing, one alarm per configured percent', () => {
    for (const percent of [50, 80, 100]) {
      template.hasResourceProperties('AWS::CloudWatch::Alarm', {
        Namespace: METRIC_NAMESPACE,
        MetricName: METRIC.keyBudgetThresholdCrossed,
        Dimensions: Match.arrayWith([{ Name: 'Percent', Value: String(percent) }]),
        Statistic: 'Sum',
        Threshold: 1,
        ComparisonOperator: 'GreaterThanOrEqualToThreshold',
        AlarmActions: [{ Ref: logicalId(stack.alarms.topic) }],
      });
    }
    template.resourceCountIs('AWS::CloudWatch::Alarm', 4);
  });

  it('a dashboard graphs every gateway metric', () => {
    const dashboards = template.findResources('AWS::CloudWatch::Dashboard');
    expect(Object.keys(dashboards)).toHaveLength(1);
    const body = JSON.stringify(Object.values(dashboards)[0]!.Properties);
    for (const name of Object.values(METRIC)) expect(body).toContain(name);
    expect(body).toContain('SEARCH(');
    for (const title of ['Requests', 'Tokens', 'Cost', 'Cache hits', 'Latency', 'Time to first token', 'Rejections by reason']) {
      expect(body).toContain(title);
    }
  });
});

describe('edge stack', () => {
  let edge: Template;
  beforeAll(() => {
    edge = synth.template(synth.stacks.edge);
  });

  it('puts CloudFront in front of the gateway URL with caching off and every method allowed', () => {
    edge.hasResourceProperties('AWS::CloudFront::Distribution', {
      DistributionConfig: {
        DefaultCacheBehavior: {
          AllowedMethods: ['GET', 'HEAD', 'OPTIONS', 'PUT', 'PATCH', 'POST', 'DELETE'],
          CachePolicyId: '4135ea2d-6df8-44a3-9df3-4b5a84be39ad', // Managed-CachingDisabled
          OriginRequestPolicyId: 'b689b0a8-53d0-40ab-baf2-68738e2966ac', // Managed-AllViewerExceptHostHeader
          ViewerProtocolPolicy: 'https-only',
          Compress: false,
        },
        HttpVersion: 'http2and3',
        Origins: [
          Match.objectLike({
            DomainName: {
              'Fn::Select': [2, { 'Fn::Split': ['/', Match.objectLike({ 'Fn::GetStackOutput': Match.objectLike({ Region: 'eu-west-1' }) })] }],
            },
            CustomOriginConfig: {
              OriginProtocolPolicy: 'https-only',
              OriginSSLProtocols: ['TLSv1.2'],
              OriginReadTimeout: 60,
              OriginKeepaliveTimeout: 60,
            },
          }),
        ],
      },
    });
  });

  it('adds the origin secret header, resolved from a generated secret replicated to the gateway region', () => {
    const secretId = logicalId(synth.stacks.edge.originSecret);
    edge.hasResourceProperties('AWS::SecretsManager::Secret', {
      Name: ORIGIN_SECRET_NAME,
      GenerateSecretString: Match.objectLike({ PasswordLength: 64 }),
      ReplicaRegions: [{ Region: 'eu-west-1' }],
    });
    edge.hasResourceProperties('AWS::CloudFront::Distribution', {
      DistributionConfig: {
        Origins: [
          Match.objectLike({
            OriginCustomHeaders: [
              {
                HeaderName: ORIGIN_SECRET_HEADER,
                HeaderValue: { 'Fn::Join': ['', ['{{resolve:secretsmanager:', { Ref: secretId }, ':SecretString:::}}']] },
              },
            ],
          }),
        ],
      },
    });
  });

  it('with one region needs no origin selector; without a domain (require_tls12 = false) the default certificate', () => {
    edge.resourceCountIs('AWS::Lambda::Function', 0);
    const distribution = Object.values(edge.findResources('AWS::CloudFront::Distribution'))[0]!;
    const config = (distribution.Properties as { DistributionConfig: Record<string, unknown> }).DistributionConfig;
    expect(config.ViewerCertificate).toBeUndefined();
    expect(config.Comment).toBe('aigw gateway (origin secret rotation 1)');
  });

  it('lives in us-east-1 and deploys after the regional stack', () => {
    expect(synth.stacks.edge.region).toBe('us-east-1');
    expect(synth.stacks.edge.dependencies).toContain(stack);
  });
});
