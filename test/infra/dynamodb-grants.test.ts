// Least privilege that can't drift: each function's DynamoDB grant must be exactly the actions
// its code issues. The source of truth is the function's own bundle, built by esbuild the way the
// stack builds it (tree-shaken, so code the entry never reaches does not count): every DynamoDB
// command class our code constructs (or paginates) in it becomes one IAM action.
import { build } from 'esbuild';
import { readdirSync } from 'node:fs';
import { createRequire } from 'node:module';
import { dirname, join } from 'node:path';
import { beforeAll, describe, expect, it } from 'vitest';
import { functionBundling } from '../../infra/function-bundling.js';
import type { RegionalStack } from '../../infra/regional-stack.js';
import { actionsOf, MODEL_PRICING, repositoryRoot, roleStatements, synthAigw, type SynthesizedApp } from './synth-app.js';

const require = createRequire(import.meta.url);

/** Command class names of a package (dist-es/commands/<Name>Command.js). */
function commandNames(pkg: string): string[] {
  const dir = join(dirname(require.resolve(`${pkg}/package.json`)), 'dist-es', 'commands');
  return readdirSync(dir)
    .filter((file) => file.endsWith('Command.js'))
    .map((file) => file.slice(0, -'.js'.length));
}

// The document client's commands wrap these operations under shorter names.
const DOCUMENT_OPERATIONS: Record<string, string> = {
  GetCommand: 'GetItem',
  PutCommand: 'PutItem',
  UpdateCommand: 'UpdateItem',
  DeleteCommand: 'DeleteItem',
  BatchGetCommand: 'BatchGetItem',
  BatchWriteCommand: 'BatchWriteItem',
  TransactGetCommand: 'TransactGetItems',
  TransactWriteCommand: 'TransactWriteItems',
};
const operationOf = new Map<string, string>([
  ...commandNames('@aws-sdk/client-dynamodb').map((name) => [name, name.slice(0, -'Command'.length)] as [string, string]),
  ...commandNames('@aws-sdk/lib-dynamodb').map((name) => [name, DOCUMENT_OPERATIONS[name] ?? name.slice(0, -'Command'.length)] as [string, string]),
]);

/** The item actions of each transaction our code writes, by file (read off the items it builds). */
const TRANSACTION_ITEM_ACTIONS: Record<string, readonly string[]> = {
  // An audit record (Put) and its stream's head (Put when new, else a conditional Update).
  'src/audit/audit-log.ts': ['dynamodb:PutItem', 'dynamodb:UpdateItem'],
};

export interface BundleDynamoDbUse {
  /** IAM actions, sorted: `dynamodb:<Operation>`. */
  actions: string[];
  /** Where each was found: `<source file>: <class>`. */
  sites: string[];
}

/**
 * The DynamoDB actions an entry's bundle issues from our own code (src/, functions/, infra/):
 * esbuild marks each bundled module with a `// <path>` line, and SDK modules are left out.
 */
export async function dynamoDbUseOfBundle(entry: string, kind: 'gateway' | 'model'): Promise<BundleDynamoDbUse> {
  const options = functionBundling(kind);
  const result = await build({
    entryPoints: [entry],
    absWorkingDir: repositoryRoot,
    bundle: true,
    platform: 'node',
    format: 'esm',
    target: options.target,
    mainFields: options.mainFields,
    external: options.externalModules,
    write: false,
    logLevel: 'silent',
  });
  const sections = result.outputFiles[0]!.text.split(/^\/\/ (?=\S+\.[cm]?[jt]s$)/m);
  const actions = new Set<string>();
  const sites: string[] = [];
  for (const section of sections) {
    const file = section.slice(0, section.indexOf('\n'));
    if (!/^(src|functions|infra|test)\//.test(file)) continue;
    if (/\bnew DynamoDB\(|\bDynamoDBDocument\.from\(/.test(section)) {
      throw new Error(`${file} uses an aggregated DynamoDB client: call commands (new GetCommand(...)) so the grant can be read off the code`);
    }
    for (const match of section.matchAll(/\bnew ([A-Z]\w*?Command)\d*\(|\bpaginate(Query|Scan|ListTables)\d*\(/g)) {
      const operation = match[1] ? operationOf.get(match[1]) : match[2];
      if (operation === undefined) continue; // not a DynamoDB command (S3, Secrets Manager)
      if (operation.startsWith('Transact')) {
        // IAM authorizes a transaction by its items' actions, which the code can't show: listed by hand.
        const items = TRANSACTION_ITEM_ACTIONS[file];
        if (!items) throw new Error(`${file}: ${operation} needs the actions of its items (PutItem, UpdateItem, ConditionCheckItem…); list them in TRANSACTION_ITEM_ACTIONS`);
        for (const action of items) actions.add(action);
        sites.push(`${file}: ${match[1]} (${items.join(', ')})`);
        continue;
      }
      actions.add(`dynamodb:${operation}`);
      sites.push(`${file}: ${match[1] ?? `paginate${match[2]}`}`);
    }
  }
  return { actions: [...actions].sort(), sites };
}

function dynamoDbStatements(synth: SynthesizedApp, stack: RegionalStack, fn: RegionalStack['gateway']) {
  return roleStatements(synth.template(stack), fn).filter((statement) =>
    actionsOf([statement]).some((action) => action.startsWith('dynamodb:')),
  );
}

const entries = {
  gateway: join(repositoryRoot, 'functions', 'gateway.ts'),
  model: join(repositoryRoot, 'functions', 'model.ts'),
};

let gatewayUse: BundleDynamoDbUse;
let modelUse: BundleDynamoDbUse;
let synth: SynthesizedApp;

beforeAll(async () => {
  [gatewayUse, modelUse] = await Promise.all([
    dynamoDbUseOfBundle(entries.gateway, 'gateway'),
    dynamoDbUseOfBundle(entries.model, 'model'),
  ]);
  // Two regions: the secondary gateway also holds the grant on the primary region's replica.
  synth = synthAigw({ regions: ['eu-west-1', 'eu-central-1'], models: [{ name: 'm', version: '1', ...MODEL_PRICING }] });
});

describe('DynamoDB grants match the code, per function', () => {
  it('the gateway bundle issues item reads and writes only (what the scan found, for the record)', () => {
    expect(gatewayUse.actions).toContain('dynamodb:GetItem');
    expect(gatewayUse.sites.length).toBeGreaterThanOrEqual(gatewayUse.actions.length);
  });

  it('each gateway is granted exactly those actions on each table it uses, in every region', () => {
    for (const stack of synth.stacks.regional) {
      const statements = dynamoDbStatements(synth, stack, stack.gateway);
      // The primary gateway uses its own table; the secondary its replica and the primary's.
      const tables = statements.flatMap((statement) => (Array.isArray(statement.Resource) ? statement.Resource : [statement.Resource]));
      expect(tables.length).toBe(stack.isPrimary ? 1 : 2);
      for (const statement of statements) {
        expect([...actionsOf([statement])].sort(), `${stack.stackName}: ${JSON.stringify(statement.Resource)}`).toEqual(gatewayUse.actions);
      }
    }
  });

  it('a model function issues no DynamoDB command and is granted none', () => {
    expect(modelUse.actions).toEqual([]);
    for (const stack of synth.stacks.regional) {
      for (const { fn } of stack.modelFunctions.values()) expect(dynamoDbStatements(synth, stack, fn)).toEqual([]);
    }
  });

  it('the scan sees a command the moment code uses it (a fixture entry that queries)', async () => {
    const use = await dynamoDbUseOfBundle(join(repositoryRoot, 'test/infra/fixtures/dynamodb-query-entry.ts'), 'gateway');
    expect(use.actions).toEqual(['dynamodb:DeleteItem', 'dynamodb:Query']);
    expect(use.actions).not.toEqual(gatewayUse.actions);
  });
});
