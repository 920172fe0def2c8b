// The gateway function's stores: admission goes to AIGW_LIMITS_REGION's replica, keys and cache
// stay local, and without the variable one client serves both.
import { describe, expect, it } from 'vitest';
import { GATEWAY_ENV } from '../../infra/function-env.js';
import { readGatewayStores } from '../../src/adapters/gateway-function-config.js';

const options = { region: 'ap-southeast-2', tableName: 'aigw', requestTimeoutMs: 1000 };

describe('readGatewayStores', () => {
  it('builds the admission client for the limits region, on the same table name', async () => {
    const stores = readGatewayStores(options, { [GATEWAY_ENV.limitsRegion]: 'eu-west-1' });
    expect(await stores.limits.client.config.region()).toBe('eu-west-1');
    expect(await stores.local.client.config.region()).toBe('ap-southeast-2');
    expect(stores.limits.client).not.toBe(stores.local.client);
    expect(stores.limits.tableName).toBe('aigw');
    expect(stores.local.tableName).toBe('aigw');
  });

  it('shares one local client when the variable is unset, empty or names the own region', async () => {
    for (const env of [{}, { [GATEWAY_ENV.limitsRegion]: '' }, { [GATEWAY_ENV.limitsRegion]: 'ap-southeast-2' }]) {
      const stores = readGatewayStores(options, env);
      expect(stores.limits).toBe(stores.local);
      expect(await stores.local.client.config.region()).toBe('ap-southeast-2');
    }
  });

  it('keeps the one-attempt policy on the admission client (a limits write is never sent twice)', async () => {
    const stores = readGatewayStores(options, { [GATEWAY_ENV.limitsRegion]: 'eu-west-1' });
    expect(await stores.limits.client.config.maxAttempts()).toBe(1);
  });
});
