import type { App } from 'aws-cdk-lib';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import type { DeployConfig } from './deploy-config.js';
import { assertTlsPolicy, EDGE_REGION, EdgeStack } from './edge-stack.js';
import { RegionalStack, type FunctionEntries } from './regional-stack.js';
import { EDGE_STACK_NAME, regionalStackName } from './stack-names.js';

const repositoryRoot = resolve(dirname(fileURLToPath(import.meta.url)), '..');

export interface AigwAppOptions {
  readonly config: DeployConfig;
  /** Override the Lambda entry points (tests); defaults to functions/gateway.ts and functions/model.ts. */
  readonly entries?: Partial<FunctionEntries>;
  readonly projectRoot?: string;
  /** Target account; undefined leaves the stacks account-agnostic (resolved at deploy time). */
  readonly account?: string;
  /**
   * The deployed gateway function URL of every region (`npm run deploy` passes them after the
   * regional stacks): the edge stack then holds them as literals, so a replaced URL changes the
   * distribution. Without them the edge stack reads the regional stacks' outputs with
   * Fn::GetStackOutput, which CloudFormation resolves only when the distribution changes anyway.
   */
  readonly gatewayUrls?: Readonly<Record<string, string>>;
}

export interface AigwStacks {
  /** In config order: the primary region first. */
  readonly regional: readonly RegionalStack[];
  readonly edge: EdgeStack;
}

export { EDGE_STACK_NAME, regionalStackName } from './stack-names.js';

/** Adds aigw's stacks to a CDK app: one regional stack per configured region and the edge stack. */
export function buildAigwApp(app: App, options: AigwAppOptions): AigwStacks {
  const { config, account } = options;
  // Before any bundling: a refused TLS policy fails the synth at once.
  assertTlsPolicy(config);
  const projectRoot = options.projectRoot ?? repositoryRoot;
  const entries: FunctionEntries = {
    gateway: options.entries?.gateway ?? join(projectRoot, 'functions', 'gateway.ts'),
    model: options.entries?.model ?? join(projectRoot, 'functions', 'model.ts'),
  };

  const regional = config.regions.map(
    (region) =>
      new RegionalStack(app, regionalStackName(region), {
        env: { account, region },
        crossRegionReferences: true,
        description: `aigw gateway, model functions and data in ${region}`,
        config,
        entries,
        projectRoot,
      }),
  );
  // The primary stack's table creates the replicas the other regions' gateways use.
  for (const stack of regional.slice(1)) stack.addStackDependency(regional[0]!);

  const deployed = options.gatewayUrls;
  const edge = new EdgeStack(app, EDGE_STACK_NAME, {
    env: { account, region: EDGE_REGION },
    crossRegionReferences: true,
    description: 'aigw CloudFront distribution and origin secret',
    config,
    gatewayOrigins: regional.map((stack) => ({ region: stack.region, url: deployed?.[stack.region] ?? stack.gatewayUrl.url })),
  });
  // Literal URLs create no reference, yet the regional stacks must still come first.
  for (const stack of regional) edge.addStackDependency(stack);
  return { regional, edge };
}
