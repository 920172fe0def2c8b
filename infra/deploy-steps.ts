// What `npm run deploy` runs after its checks: the regional stacks first, then the edge stack
// with the gateway URLs they output passed in as literals, so that a replaced gateway URL always
// changes the distribution (Fn::GetStackOutput alone is resolved only when the consumer changes).
// No CDK imports here: the CLI builds these commands without loading the CDK.
import { EDGE_STACK_NAME, regionalStackName } from './stack-names.js';

/** CDK context key holding the deployed gateway URLs, JSON: {"<region>": "https://…/"}. */
export const GATEWAY_URLS_CONTEXT = 'aigw:gatewayUrls';
/** The regional stack's output with its gateway function URL (infra/regional-stack.ts). */
export const GATEWAY_URL_OUTPUT = 'GatewayUrl';

const FUNCTION_URL = /^https:\/\/[a-z0-9]+\.lambda-url\.[a-z0-9-]+\.on\.aws\/$/;

function checkedUrls(urls: Record<string, unknown>, regions: readonly string[], source: string): Record<string, string> {
  const result: Record<string, string> = {};
  for (const region of regions) {
    const url = urls[region];
    if (typeof url !== 'string' || !FUNCTION_URL.test(url)) {
      throw new Error(`${source}: no gateway function URL for ${region} (got ${JSON.stringify(url)})`);
    }
    result[region] = url;
  }
  const unknown = Object.keys(urls).filter((region) => !regions.includes(region));
  if (unknown.length > 0) throw new Error(`${source}: ${unknown.join(', ')} is not in [deploy] regions`);
  return result;
}

/** Reads the `-c aigw:gatewayUrls=…` context value; undefined when it is not given. */
export function parseGatewayUrls(value: unknown, regions: readonly string[]): Record<string, string> | undefined {
  if (value === undefined) return undefined;
  let parsed: unknown = value;
  if (typeof value === 'string') {
    try {
      parsed = JSON.parse(value);
    } catch {
      throw new Error(`${GATEWAY_URLS_CONTEXT} is not JSON`);
    }
  }
  if (typeof parsed !== 'object' || parsed === null || Array.isArray(parsed)) {
    throw new Error(`${GATEWAY_URLS_CONTEXT} must be an object of region to gateway URL`);
  }
  return checkedUrls(parsed as Record<string, unknown>, regions, GATEWAY_URLS_CONTEXT);
}

/** The gateway URLs from `cdk deploy --outputs-file` (stack name -> output name -> value). */
export function gatewayUrlsFromOutputs(outputs: unknown, regions: readonly string[]): Record<string, string> {
  const stacks = (typeof outputs === 'object' && outputs !== null ? outputs : {}) as Record<string, Record<string, unknown> | undefined>;
  const urls = Object.fromEntries(regions.map((region) => [region, stacks[regionalStackName(region)]?.[GATEWAY_URL_OUTPUT]]));
  return checkedUrls(urls, regions, 'the outputs of the regional stacks');
}

export interface DeployCommands {
  /** `cdk deploy` of every regional stack, writing their outputs to `outputsFile`. */
  readonly regional: string[];
  /** `cdk deploy` of the edge stack alone, given the deployed gateway URLs. */
  edge(gatewayUrls: Record<string, string>): string[];
}

/** The cdk command lines (arguments after `cdk`); `extra` (e.g. --profile) goes to both. */
export function deployCommands(options: {
  regions: readonly string[];
  configPath: string;
  outputsFile: string;
  extra?: readonly string[];
}): DeployCommands {
  const common = ['-c', `config=${options.configPath}`, ...(options.extra ?? [])];
  return {
    regional: ['deploy', ...options.regions.map(regionalStackName), '--exclusively', '--outputs-file', options.outputsFile, ...common],
    edge: (gatewayUrls) => [
      'deploy',
      EDGE_STACK_NAME,
      '--exclusively',
      '-c',
      `${GATEWAY_URLS_CONTEXT}=${JSON.stringify(gatewayUrls)}`,
      ...common,
    ],
  };
}
