// Synthesizes aigw's CDK app for the infra tests: the same context as cdk.json, a temporary
// output folder, and helpers to read IAM statements and function settings out of templates.
import { App, Stack, type CfnElement } from 'aws-cdk-lib';
import { Template } from 'aws-cdk-lib/assertions';
import type { IFunction } from 'aws-cdk-lib/aws-lambda';
import { readFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { buildAigwApp, type AigwStacks } from '../../infra/aigw-app.js';
import { deployConfigFrom, type DeployConfig, type DeployContext } from '../../infra/deploy-config.js';
import type { FunctionEntries } from '../../infra/regional-stack.js';
import { addRulePacks } from '../../infra/rule-packs.js';
import { scratchDir } from '../helpers/scratch-dir.js';

export const repositoryRoot = resolve(fileURLToPath(new URL('../..', import.meta.url)));

/** Small stand-in handlers; the real functions/*.ts are bundled by lambda-size.test.ts. */
export const fixtureEntries: FunctionEntries = {
  gateway: join(repositoryRoot, 'test/infra/fixtures/gateway-entry.ts'),
  model: join(repositoryRoot, 'test/infra/fixtures/model-entry.ts'),
};

/** What every model entry of a test config needs besides its name and version. */
export const MODEL_PRICING = {
  context_length: 2048,
  input_usd_per_million_tokens: '0.10',
  output_usd_per_million_tokens: '0.40',
};

export interface SynthesizedApp {
  readonly config: DeployConfig;
  readonly stacks: AigwStacks;
  readonly outdir: string;
  template(stack: Stack): Template;
}

export interface SynthOptions {
  /** Deployed gateway URLs per region, as `npm run deploy` passes them to the edge stack. */
  readonly gatewayUrls?: Record<string, string>;
  /** Run cdk-nag's packs as `cdk synth` does: synth throws on any unacknowledged finding. */
  readonly rulePacks?: boolean;
}

export function synthAigw(
  rawDeploy: unknown,
  entries: FunctionEntries = fixtureEntries,
  deployContext: DeployContext = {},
  options: SynthOptions = {},
): SynthesizedApp {
  const context = (JSON.parse(readFileSync(join(repositoryRoot, 'cdk.json'), 'utf8')) as { context: Record<string, unknown> })
    .context;
  const outdir = scratchDir('aigw-cdk-');
  const app = new App({ outdir, context });
  // Test configs have no custom domain; require_tls12's refusal is tested on its own.
  const config = deployConfigFrom({ require_tls12: false, ...(rawDeploy as object | undefined) }, deployContext);
  const stacks = buildAigwApp(app, { config, entries, gatewayUrls: options.gatewayUrls });
  if (options.rulePacks) addRulePacks(app);
  app.synth();
  const templates = new Map<Stack, Template>();
  return {
    config,
    stacks,
    outdir,
    template(stack) {
      let template = templates.get(stack);
      if (!template) {
        template = Template.fromStack(stack);
        templates.set(stack, template);
      }
      return template;
    },
  };
}

export function logicalId(construct: { node: { defaultChild?: unknown } } | CfnElement): string {
  const element = ('logicalId' in construct ? construct : construct.node.defaultChild) as CfnElement;
  return Stack.of(element).getLogicalId(element);
}

export interface Statement {
  Effect: string;
  Action: string | string[];
  Resource?: unknown;
  Condition?: Record<string, unknown>;
}

/** Every IAM statement granted to a function's role (inline policies attached to it). */
export function roleStatements(template: Template, fn: IFunction): Statement[] {
  const roleId = logicalId(fn.role!.node.defaultChild as CfnElement);
  const policies = Object.values(template.findResources('AWS::IAM::Policy')) as {
    Properties: { Roles: unknown[]; PolicyDocument: { Statement: Statement[] } };
  }[];
  return policies
    .filter((policy) => JSON.stringify(policy.Properties.Roles).includes(`"${roleId}"`))
    .flatMap((policy) => policy.Properties.PolicyDocument.Statement);
}

export function actionsOf(statements: readonly Statement[]): string[] {
  return statements.flatMap((statement) => (Array.isArray(statement.Action) ? statement.Action : [statement.Action]));
}

/** The Properties of a function resource in its stack's template. */
export function functionProperties(template: Template, fn: IFunction): Record<string, any> {
  const resources = template.findResources('AWS::Lambda::Function');
  const resource = resources[logicalId(fn as unknown as { node: { defaultChild?: unknown } })];
  if (!resource) throw new Error(`no function ${fn.node.path} in template`);
  return resource.Properties as Record<string, any>;
}
