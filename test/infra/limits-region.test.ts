// With several regions, admission writes go to the primary region's replica ([deploy]
// limits_in_primary_region): the secondary gateway learns the region and may write that table.
import { beforeAll, describe, expect, it } from 'vitest';
import { GATEWAY_ENV } from '../../infra/function-env.js';
import type { RegionalStack } from '../../infra/regional-stack.js';
import { tableSchema } from '../../src/store/table-schema.js';
import { actionsOf, functionProperties, roleStatements, synthAigw, type SynthesizedApp, type Statement } from './synth-app.js';

const tableArn = (region: string) => ({
  'Fn::Join': ['', [`arn:aws:dynamodb:${region}:`, { Ref: 'AWS::AccountId' }, `:table/${tableSchema().tableName}`]],
});

function gatewayEnv(synth: SynthesizedApp, stack: RegionalStack): Record<string, unknown> {
  return (functionProperties(synth.template(stack), stack.gateway).Environment as { Variables: Record<string, unknown> }).Variables;
}

function dynamoStatements(synth: SynthesizedApp, stack: RegionalStack): Statement[] {
  return roleStatements(synth.template(stack), stack.gateway).filter((statement) =>
    actionsOf([statement]).some((action) => action.startsWith('dynamodb:')),
  );
}

// CDK merges statements with the same actions into one with several resources.
function resourcesOf(statement: Statement): unknown[] {
  return Array.isArray(statement.Resource) ? statement.Resource : [statement.Resource];
}

function synthTwoRegions(limitsInPrimaryRegion?: boolean): [SynthesizedApp, RegionalStack, RegionalStack] {
  const synth = synthAigw({
    regions: ['eu-west-1', 'ap-southeast-2'],
    ...(limitsInPrimaryRegion === undefined ? {} : { limits_in_primary_region: limitsInPrimaryRegion }),
  });
  const [primary, secondary] = synth.stacks.regional as [RegionalStack, RegionalStack];
  return [synth, primary, secondary];
}

describe('limits in the primary region (the default)', () => {
  let synth: SynthesizedApp;
  let primary: RegionalStack;
  let secondary: RegionalStack;
  beforeAll(() => {
    [synth, primary, secondary] = synthTwoRegions();
  });

  it('tells the secondary gateway to send admission writes to the primary region', () => {
    expect(synth.config.limitsInPrimaryRegion).toBe(true);
    expect(gatewayEnv(synth, secondary)[GATEWAY_ENV.limitsRegion]).toBe('eu-west-1');
  });

  it('lets the secondary gateway read and write the primary replica with the same actions as its own', () => {
    const statements = dynamoStatements(synth, secondary);
    const resources = statements.flatMap(resourcesOf);
    expect(resources).toHaveLength(2);
    expect(resources).toEqual(expect.arrayContaining([tableArn('ap-southeast-2'), tableArn('eu-west-1')]));
    const actionsOn = (region: string) =>
      actionsOf(statements.filter((statement) => JSON.stringify(resourcesOf(statement)).includes(`dynamodb:${region}:`))).sort();
    expect(actionsOn('eu-west-1')).toEqual(actionsOn('ap-southeast-2'));
    expect(actionsOn('eu-west-1')).toEqual(expect.arrayContaining(['dynamodb:GetItem', 'dynamodb:UpdateItem']));
    expect(actionsOn('eu-west-1')).not.toContain('dynamodb:DeleteTable');
  });

  it('leaves the primary gateway on its own replica, without the variable', () => {
    expect(gatewayEnv(synth, primary)).not.toHaveProperty(GATEWAY_ENV.limitsRegion);
    expect(dynamoStatements(synth, primary).flatMap(resourcesOf)).toHaveLength(1);
  });
});

describe('limits_in_primary_region = false', () => {
  it('keeps every gateway on its local replica: no variable, no grant on the primary table', () => {
    const [synth, primary, secondary] = synthTwoRegions(false);
    expect(synth.config.limitsInPrimaryRegion).toBe(false);
    for (const stack of [primary, secondary]) {
      expect(gatewayEnv(synth, stack)).not.toHaveProperty(GATEWAY_ENV.limitsRegion);
    }
    expect(dynamoStatements(synth, secondary).flatMap(resourcesOf)).toEqual([tableArn('ap-southeast-2')]);
  });
});

describe('one region', () => {
  it('never sets the variable', () => {
    const synth = synthAigw({ regions: ['us-east-1'], limits_in_primary_region: true });
    const [only] = synth.stacks.regional as [RegionalStack];
    expect(gatewayEnv(synth, only)).not.toHaveProperty(GATEWAY_ENV.limitsRegion);
  });
});
