import { Match, type Template } from 'aws-cdk-lib/assertions';
import { beforeAll, describe, expect, it } from 'vitest';
import { METRIC } from '../../src/telemetry/metric-names.js';
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

// Two regions (Ireland primary, Oregon), x86_64 everywhere, a custom domain, longer log retention.
let synth: SynthesizedApp;
let primary: RegionalStack;
let secondary: RegionalStack;

beforeAll(() => {
  synth = synthAigw({
    regions: ['eu-west-1', 'us-west-2'],
    architecture: 'x86_64',
    daily_spend_alarm_usd: 100,
    key_budget_alert_percents: [90],
    log_retention_days: 365,
    origin_secret_rotation: 4,
    domain_name: 'ai.example.com',
    certificate_arn: 'arn:aws:acm:us-east-1:123456789012:certificate/0f7c5a2e-1111-2222-3333-444455556666',
    models: [{ name: 'demo', version: '2', ...MODEL_PRICING }],
  }, fixtureEntries, { budgetAlertPercents: [50, 90] }, { rulePacks: true });
  [primary, secondary] = synth.stacks.regional as [RegionalStack, RegionalStack];
});

describe('table across regions', () => {
  it('lives in the primary stack with a point-in-time-recovered replica in every region', () => {
    const template = synth.template(primary);
    const tables = Object.values(template.findResources('AWS::DynamoDB::GlobalTable'));
    expect(tables).toHaveLength(1);
    const properties = tables[0]!.Properties as { TableName: string; Replicas: { Region: string }[] };
    expect(properties.TableName).toBe(tableSchema().tableName);
    expect([...properties.Replicas].sort((a, b) => a.Region.localeCompare(b.Region))).toEqual([
      { Region: 'eu-west-1', PointInTimeRecoverySpecification: { PointInTimeRecoveryEnabled: true } },
      { Region: 'us-west-2', PointInTimeRecoverySpecification: { PointInTimeRecoveryEnabled: true } },
    ]);
  });

  it('the other region declares no table; its gateway uses the local replica and, for limits, the primary one', () => {
    const template = synth.template(secondary);
    template.resourceCountIs('AWS::DynamoDB::GlobalTable', 0);
    template.resourceCountIs('AWS::DynamoDB::Table', 0);
    const statements = roleStatements(template, secondary.gateway).filter((statement) =>
      actionsOf([statement]).some((action) => action.startsWith('dynamodb:')),
    );
    const resources = statements.flatMap((statement) => statement.Resource);
    expect(resources).toHaveLength(2);
    expect(resources).toEqual(expect.arrayContaining([
      { 'Fn::Join': ['', ['arn:aws:dynamodb:us-west-2:', { Ref: 'AWS::AccountId' }, `:table/${tableSchema().tableName}`]] },
      { 'Fn::Join': ['', ['arn:aws:dynamodb:eu-west-1:', { Ref: 'AWS::AccountId' }, `:table/${tableSchema().tableName}`]] },
    ]));
    expect(secondary.dependencies).toContain(primary);
  });
});

describe('regional stacks', () => {
  it('each have their gateway, model function and alarms, with the configured architecture and retention', () => {
    for (const stack of [primary, secondary]) {
      const template = synth.template(stack);
      expect(functionProperties(template, stack.gateway).Architectures).toEqual(['x86_64']);
      expect(functionProperties(template, stack.modelFunctions.get('demo@2')!.fn).Architectures).toEqual(['x86_64']);
      for (const group of Object.values(template.findResources('AWS::Logs::LogGroup'))) {
        expect((group.Properties as { RetentionInDays: number }).RetentionInDays).toBe(365);
      }
      template.resourceCountIs('AWS::SNS::Topic', 1);
      // No alarm_email configured: the topic exists, without a subscription.
      template.resourceCountIs('AWS::SNS::Subscription', 0);
    }
  });

  it('split the daily spend threshold between regions so the total can never pass it unnoticed', () => {
    for (const stack of [primary, secondary]) {
      synth.template(stack).hasResourceProperties('AWS::CloudWatch::Alarm', {
        MetricName: METRIC.costMicroUsd,
        Threshold: 50_000_000,
      });
      synth.template(stack).hasResourceProperties('AWS::CloudWatch::Alarm', {
        MetricName: METRIC.keyBudgetThresholdCrossed,
        Dimensions: Match.arrayWith([{ Name: 'Percent', Value: '90' }]),
      });
    }
  });

  it('one dashboard, in the primary region, graphs both regions', () => {
    synth.template(secondary).resourceCountIs('AWS::CloudWatch::Dashboard', 0);
    const dashboards = synth.template(primary).findResources('AWS::CloudWatch::Dashboard');
    const body = JSON.stringify(Object.values(dashboards)[0]!.Properties);
    expect(body).toContain('\\"region\\":\\"us-west-2\\"');
    expect(body).toContain('\\"region\\":\\"eu-west-1\\"');
  });
});

describe('edge stack', () => {
  let edge: Template;
  beforeAll(() => {
    edge = synth.template(synth.stacks.edge);
  });

  it('replicates the origin secret to every gateway region', () => {
    edge.hasResourceProperties('AWS::SecretsManager::Secret', {
      ReplicaRegions: [{ Region: 'eu-west-1' }, { Region: 'us-west-2' }],
    });
  });

  it('routes viewers to the nearest region with a Lambda@Edge origin-request function', () => {
    const functions = edge.findResources('AWS::Lambda::Function');
    expect(Object.keys(functions)).toHaveLength(1);
    const selector = Object.values(functions)[0]!.Properties as { Runtime: string; Code: { ZipFile: unknown } };
    expect(selector.Runtime).toBe('nodejs22.x');
    const code = JSON.stringify(selector.Code.ZipFile);
    for (const region of ['eu-west-1', 'us-west-2']) {
      expect(code).toContain(`"StackName":"Aigw-${region}","Region":"${region}"`);
    }
    edge.hasResourceProperties('AWS::CloudFront::Distribution', {
      DistributionConfig: {
        DefaultCacheBehavior: {
          LambdaFunctionAssociations: [
            { EventType: 'origin-request', LambdaFunctionARN: { Ref: Match.stringLikeRegexp('^OriginSelector') } },
          ],
        },
      },
    });
    expect(synth.stacks.edge.dependencies).toEqual(expect.arrayContaining([primary, secondary]));
  });

  it('serves the custom domain with the TLSv1.2_2021 viewer policy', () => {
    edge.hasResourceProperties('AWS::CloudFront::Distribution', {
      DistributionConfig: {
        Aliases: ['ai.example.com'],
        ViewerCertificate: {
          AcmCertificateArn: 'arn:aws:acm:us-east-1:123456789012:certificate/0f7c5a2e-1111-2222-3333-444455556666',
          MinimumProtocolVersion: 'TLSv1.2_2021',
          SslSupportMethod: 'sni-only',
        },
        HttpVersion: 'http2and3',
        Comment: 'aigw gateway (origin secret rotation 4)',
      },
    });
    edge.hasOutput('GatewayEndpoint', { Value: 'https://ai.example.com/v1' });
  });

  it('keeps the function URLs secret-guarded: one origin, with the header, for the selector to retarget', () => {
    const distribution = Object.values(edge.findResources('AWS::CloudFront::Distribution'))[0]!;
    const origins = (distribution.Properties as { DistributionConfig: { Origins: { OriginCustomHeaders: unknown[] }[] } })
      .DistributionConfig.Origins;
    expect(origins).toHaveLength(1);
    expect(origins[0]!.OriginCustomHeaders).toHaveLength(1);
    expect(logicalId(synth.stacks.edge.originSecret)).toBeTruthy();
  });
});
