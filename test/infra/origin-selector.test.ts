import { writeFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { INLINE_CODE_LIMIT_BYTES, originSelectorSource } from '../../infra/edge-origin-selector.js';
import { ORIGIN_SECRET_HEADER } from '../../infra/origin-protection.js';
import { distanceKm, nearestRegion, nearestRegionTable, REGION_LOCATIONS } from '../../infra/regions.js';
import { scratchDir } from '../helpers/scratch-dir.js';

describe('nearest region', () => {
  it('measures great-circle distances', () => {
    expect(distanceKm('eu-west-1', 'eu-west-1')).toBe(0);
    // Dublin to London is about 460 km; Frankfurt to Tokyo about 9,300 km.
    expect(distanceKm('eu-west-1', 'eu-west-2')).toBeGreaterThan(400);
    expect(distanceKm('eu-west-1', 'eu-west-2')).toBeLessThan(520);
    expect(distanceKm('eu-central-1', 'ap-northeast-1')).toBeGreaterThan(9000);
    expect(distanceKm('eu-central-1', 'ap-northeast-1')).toBeLessThan(9600);
  });

  it('picks the closest gateway region, the primary on ties', () => {
    const gateways = ['us-east-1', 'eu-west-1', 'ap-southeast-1'];
    expect(nearestRegion('eu-central-1', gateways)).toBe('eu-west-1');
    expect(nearestRegion('us-west-2', gateways)).toBe('us-east-1');
    expect(nearestRegion('ap-northeast-1', gateways)).toBe('ap-southeast-1');
    expect(nearestRegion('sa-east-1', gateways)).toBe('us-east-1');
    expect(nearestRegion('eu-west-1', ['eu-west-1', 'eu-west-1'])).toBe('eu-west-1');
  });

  it('maps every known region to a gateway region', () => {
    const table = nearestRegionTable(['us-west-2', 'eu-north-1']);
    expect(Object.keys(table).sort()).toEqual(Object.keys(REGION_LOCATIONS).sort());
    expect(new Set(Object.values(table))).toEqual(new Set(['us-west-2', 'eu-north-1']));
  });
});

/** A CloudFront origin-request event as Lambda@Edge receives it (one custom origin). */
function originRequestEvent(domainName: string) {
  return {
    Records: [
      {
        cf: {
          config: { distributionDomainName: 'd111111abcdef8.cloudfront.net', eventType: 'origin-request', requestId: 'r1' },
          request: {
            clientIp: '203.0.113.7',
            method: 'POST',
            uri: '/v1/chat/completions',
            querystring: '',
            headers: {
              host: [{ key: 'Host', value: domainName }],
              authorization: [{ key: 'Authorization', value: 'Bearer aigw-test' }],
              'content-type': [{ key: 'Content-Type', value: 'application/json' }],
            },
            origin: {
              custom: {
                customHeaders: { [ORIGIN_SECRET_HEADER]: [{ key: ORIGIN_SECRET_HEADER, value: 's3cret' }] },
                domainName,
                keepaliveTimeout: 60,
                path: '',
                port: 443,
                protocol: 'https',
                readTimeout: 60,
                sslProtocols: ['TLSv1.2'],
              },
            },
          },
        },
      },
    ],
  };
}

type Handler = (event: ReturnType<typeof originRequestEvent>) => Promise<ReturnType<typeof originRequestEvent>['Records'][0]['cf']['request']>;

function loadHandler(source: string): Handler {
  const dir = scratchDir('aigw-origin-selector-');
  const file = join(dir, 'index.cjs');
  writeFileSync(file, source);
  return (createRequire(import.meta.url)(file) as { handler: Handler }).handler;
}

describe('Lambda@Edge origin selector', () => {
  const regions = ['us-east-1', 'eu-west-1', 'ap-northeast-1'];
  const domains = regions.map((region) => `abcdefghijklmnopqrstuvwxyz012345.lambda-url.${region}.on.aws`);
  const handler = loadHandler(originSelectorSource(regions, domains));
  const savedRegion = process.env.AWS_REGION;
  afterEach(() => {
    if (savedRegion === undefined) delete process.env.AWS_REGION;
    else process.env.AWS_REGION = savedRegion;
  });

  it('sends a viewer served from Frankfurt to the Ireland gateway, keeping the secret header', async () => {
    process.env.AWS_REGION = 'eu-central-1';
    const request = await handler(originRequestEvent(domains[0]!));
    expect(request.origin.custom.domainName).toBe(domains[1]);
    expect(request.headers.host).toEqual([{ key: 'Host', value: domains[1] }]);
    expect(request.origin.custom.customHeaders[ORIGIN_SECRET_HEADER]).toEqual([{ key: ORIGIN_SECRET_HEADER, value: 's3cret' }]);
    expect(request.origin.custom.readTimeout).toBe(60);
    expect(request.headers.authorization).toEqual([{ key: 'Authorization', value: 'Bearer aigw-test' }]);
  });

  it('sends a viewer served from Seoul to Tokyo, and one served from Ohio to the primary', async () => {
    process.env.AWS_REGION = 'ap-northeast-2';
    expect((await handler(originRequestEvent(domains[0]!))).origin.custom.domainName).toBe(domains[2]);
    process.env.AWS_REGION = 'us-east-2';
    const request = await handler(originRequestEvent(domains[0]!));
    expect(request.origin.custom.domainName).toBe(domains[0]);
    expect(request.headers.host).toEqual([{ key: 'Host', value: domains[0] }]);
  });

  it('falls back to the primary gateway in a region it does not know', async () => {
    process.env.AWS_REGION = 'xx-nowhere-1';
    expect((await handler(originRequestEvent(domains[2]!))).origin.custom.domainName).toBe(domains[0]);
  });

  it('fits the inline code limit with real function URL domains, even with many regions', () => {
    const many = ['us-east-1', 'us-west-2', 'eu-west-1', 'eu-central-1', 'ap-northeast-1', 'ap-southeast-2', 'sa-east-1', 'ap-south-1'];
    const source = originSelectorSource(
      many,
      many.map((region) => `abcdefghijklmnopqrstuvwxyz012345.lambda-url.${region}.on.aws`),
    );
    expect(Buffer.byteLength(source)).toBeLessThan(INLINE_CODE_LIMIT_BYTES);
  });

  it('needs one domain per region', () => {
    expect(() => originSelectorSource(['us-east-1', 'eu-west-1'], ['a.example'])).toThrow(RangeError);
  });
});
