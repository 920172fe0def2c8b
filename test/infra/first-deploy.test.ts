// What a first `npm run deploy` on a new account depends on, read from synthesized templates:
// the TLS policy refusal, the gateway's reservation, and an edge stack that changes whenever a
// gateway URL does (so CloudFront can never be left on a replaced, dead origin).
import type { Template } from 'aws-cdk-lib/assertions';
import { beforeAll, describe, expect, it } from 'vitest';
import { deployConfigFrom } from '../../infra/deploy-config.js';
import { deployCommands, GATEWAY_URLS_CONTEXT, gatewayUrlsFromOutputs, parseGatewayUrls } from '../../infra/deploy-steps.js';
import { EDGE_LOG_GROUP_NAME } from '../../infra/edge-origin-selector.js';
import { TLS12_REQUIRES_DOMAIN } from '../../infra/edge-stack.js';
import { functionProperties, MODEL_PRICING, synthAigw, type SynthesizedApp } from './synth-app.js';

const REGIONS = ['eu-west-1', 'us-west-2'];
const DEPLOY = {
  regions: REGIONS,
  require_tls12: true,
  domain_name: 'ai.example.com',
  certificate_arn: 'arn:aws:acm:us-east-1:123456789012:certificate/0f7c5a2e-1111-2222-3333-444455556666',
  gateway_reserved_concurrency: 50,
  models: [{ name: 'demo', version: '1', ...MODEL_PRICING }],
};
const FIRST_URLS = {
  'eu-west-1': 'https://aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa.lambda-url.eu-west-1.on.aws/',
  'us-west-2': 'https://bbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbb.lambda-url.us-west-2.on.aws/',
};
// The Oregon gateway was replaced (e.g. its stack deleted and deployed again): a new URL.
const REPLACED_URLS = { ...FIRST_URLS, 'us-west-2': 'https://cccccccccccccccccccccccccccccccc.lambda-url.us-west-2.on.aws/' };

type Resources = Record<string, { Type: string; Properties: Record<string, any> }>;

function edgeResources(synth: SynthesizedApp): Resources {
  return synth.template(synth.stacks.edge).toJSON().Resources as Resources;
}
function ofType(resources: Resources, type: string) {
  return Object.entries(resources).filter(([, resource]) => resource.Type === type);
}

let first: SynthesizedApp;
let replaced: SynthesizedApp;

beforeAll(() => {
  // Both with cdk-nag's packs on, as `cdk synth` runs them: the custom-domain, two-region shape passes clean.
  first = synthAigw(DEPLOY, undefined, undefined, { gatewayUrls: FIRST_URLS, rulePacks: true });
  replaced = synthAigw(DEPLOY, undefined, undefined, { gatewayUrls: REPLACED_URLS, rulePacks: true });
});

describe('require_tls12 (default true)', () => {
  it('refuses to synthesize without a custom domain, saying why', () => {
    expect(deployConfigFrom({}).requireTls12).toBe(true);
    expect(() => synthAigw({ require_tls12: true })).toThrow(TLS12_REQUIRES_DOMAIN);
    expect(TLS12_REQUIRES_DOMAIN).toMatch(/TLSv1 viewer policy/);
    expect(TLS12_REQUIRES_DOMAIN).toMatch(/domain_name and certificate_arn/);
  });

  it('with a custom domain, the distribution enforces TLSv1.2_2021', () => {
    const [[, distribution]] = ofType(edgeResources(first), 'AWS::CloudFront::Distribution') as [[string, any]];
    expect(distribution.Properties.DistributionConfig.ViewerCertificate.MinimumProtocolVersion).toBe('TLSv1.2_2021');
  });
});

describe('gateway reserved concurrency', () => {
  it('reserves (and caps) the configured instances in every region', () => {
    for (const stack of first.stacks.regional) {
      expect(functionProperties(first.template(stack), stack.gateway).ReservedConcurrentExecutions).toBe(50);
    }
  });
});

describe('origins from the deployed regional stacks', () => {
  let edge: Template;
  beforeAll(() => {
    edge = first.template(first.stacks.edge);
  });

  it('are literals in the edge stack: no Fn::GetStackOutput left to go stale', () => {
    const json = JSON.stringify(edge.toJSON());
    expect(json).not.toContain('Fn::GetStackOutput');
    const [[, distribution]] = ofType(edgeResources(first), 'AWS::CloudFront::Distribution') as [[string, any]];
    expect(distribution.Properties.DistributionConfig.Origins[0].DomainName).toBe(new URL(FIRST_URLS['eu-west-1']).host);
    const [[, selector]] = ofType(edgeResources(first), 'AWS::Lambda::Function') as [[string, any]];
    for (const url of Object.values(FIRST_URLS)) expect(selector.Properties.Code.ZipFile).toContain(new URL(url).host);
  });

  it('a replaced gateway URL changes the origin selector and publishes a new version of it', () => {
    const [[, before]] = ofType(edgeResources(first), 'AWS::Lambda::Function') as [[string, any]];
    const [[, after]] = ofType(edgeResources(replaced), 'AWS::Lambda::Function') as [[string, any]];
    expect(after.Properties.Code.ZipFile).toContain(new URL(REPLACED_URLS['us-west-2']).host);
    expect(after.Properties.Code.ZipFile).not.toContain(new URL(FIRST_URLS['us-west-2']).host);
    expect(before.Properties.Code.ZipFile).not.toEqual(after.Properties.Code.ZipFile);
    // Lambda@Edge runs a published version: its logical id must change for CloudFront to get the new code.
    const versionIds = (synth: SynthesizedApp) => ofType(edgeResources(synth), 'AWS::Lambda::Version').map(([id]) => id);
    expect(versionIds(first)).toHaveLength(1);
    expect(versionIds(replaced)).toHaveLength(1);
    expect(versionIds(replaced)[0]).not.toBe(versionIds(first)[0]);
    const association = (synth: SynthesizedApp) =>
      JSON.stringify(
        (ofType(edgeResources(synth), 'AWS::CloudFront::Distribution')[0]![1].Properties.DistributionConfig.DefaultCacheBehavior as {
          LambdaFunctionAssociations: unknown;
        }).LambdaFunctionAssociations,
      );
    expect(association(replaced)).toContain(versionIds(replaced)[0]);
  });

  it('a replaced primary gateway URL changes the distribution\'s origin itself', () => {
    const primaryReplaced = synthAigw(DEPLOY, undefined, undefined, {
      gatewayUrls: { ...FIRST_URLS, 'eu-west-1': 'https://dddddddddddddddddddddddddddddddd.lambda-url.eu-west-1.on.aws/' },
    });
    const origin = (synth: SynthesizedApp) =>
      ofType(edgeResources(synth), 'AWS::CloudFront::Distribution')[0]![1].Properties.DistributionConfig.Origins[0].DomainName;
    expect(origin(primaryReplaced)).toBe('dddddddddddddddddddddddddddddddd.lambda-url.eu-west-1.on.aws');
    expect(origin(primaryReplaced)).not.toBe(origin(first));
  });

  it('still deploy after the regional stacks', () => {
    expect(first.stacks.edge.dependencies).toEqual(expect.arrayContaining([...first.stacks.regional]));
  });
});

describe('the origin selector logs', () => {
  it('go to one log group name in every region, created with retention by the edge stack and each regional stack', () => {
    const groups = [first.template(first.stacks.edge), ...first.stacks.regional.map((stack) => first.template(stack))].map(
      (template) =>
        Object.values(template.findResources('AWS::Logs::LogGroup')).filter(
          (group) => (group.Properties as { LogGroupName?: string }).LogGroupName === EDGE_LOG_GROUP_NAME,
        ),
    );
    expect(groups.map((list) => list.length)).toEqual([1, 1, 1]);
    for (const [group] of groups) expect((group!.Properties as { RetentionInDays: number }).RetentionInDays).toBe(180);
    const [[, selector]] = ofType(edgeResources(first), 'AWS::Lambda::Function') as [[string, any]];
    expect(selector.Properties.LoggingConfig.LogGroup).toEqual({ Ref: expect.stringMatching(/^OriginSelectorLogs/) });
  });

  it('can only be written where such a group exists: no logs:CreateLogGroup, one grant per region', () => {
    const policies = ofType(edgeResources(first), 'AWS::IAM::Policy');
    const statements = policies.flatMap(([, policy]) => policy.Properties.PolicyDocument.Statement as { Action: string[]; Resource: unknown[] }[]);
    expect(JSON.stringify(statements)).not.toContain('logs:CreateLogGroup');
    const logs = statements.find((statement) => statement.Action.includes('logs:PutLogEvents'))!;
    expect(JSON.stringify(logs.Resource)).toContain(`arn:aws:logs:us-east-1:`);
    for (const region of REGIONS) expect(JSON.stringify(logs.Resource)).toContain(`arn:aws:logs:${region}:`);
    expect((logs.Resource as unknown[]).length).toBe(3);
  });
});

describe('deploy steps', () => {
  const outputs = {
    'Aigw-eu-west-1': { GatewayUrl: FIRST_URLS['eu-west-1'], TableName: 'aigw' },
    'Aigw-us-west-2': { GatewayUrl: FIRST_URLS['us-west-2'] },
  };

  it('read the gateway URLs from the regional stacks\' outputs file', () => {
    expect(gatewayUrlsFromOutputs(outputs, REGIONS)).toEqual(FIRST_URLS);
    expect(() => gatewayUrlsFromOutputs({ 'Aigw-eu-west-1': outputs['Aigw-eu-west-1'] }, REGIONS)).toThrow(/no gateway function URL for us-west-2/);
  });

  it('pass them to the edge stack as context, which the app reads back exactly', () => {
    const commands = deployCommands({ regions: REGIONS, configPath: 'aigw.toml', outputsFile: '.aigw/outputs.json' });
    expect(commands.regional).toEqual([
      'deploy', 'Aigw-eu-west-1', 'Aigw-us-west-2', '--exclusively', '--outputs-file', '.aigw/outputs.json', '-c', 'config=aigw.toml',
    ]);
    const edge = commands.edge(FIRST_URLS);
    expect(edge.slice(0, 3)).toEqual(['deploy', 'Aigw-Edge', '--exclusively']);
    const context = edge[edge.indexOf('-c') + 1]!;
    expect(context.startsWith(`${GATEWAY_URLS_CONTEXT}=`)).toBe(true);
    expect(parseGatewayUrls(context.slice(GATEWAY_URLS_CONTEXT.length + 1), REGIONS)).toEqual(FIRST_URLS);
  });

  it('reject URLs that are not function URLs, or miss or add a region', () => {
    expect(parseGatewayUrls(undefined, REGIONS)).toBeUndefined();
    expect(() => parseGatewayUrls('{', REGIONS)).toThrow(/not JSON/);
    expect(() => parseGatewayUrls({ ...FIRST_URLS, 'eu-west-1': 'https://example.com/' }, REGIONS)).toThrow(/eu-west-1/);
    expect(() => parseGatewayUrls({ 'eu-west-1': FIRST_URLS['eu-west-1'] }, REGIONS)).toThrow(/us-west-2/);
    expect(() => parseGatewayUrls({ ...FIRST_URLS, 'ap-south-1': FIRST_URLS['eu-west-1'] }, REGIONS)).toThrow(/ap-south-1 is not in \[deploy\] regions/);
  });
});
