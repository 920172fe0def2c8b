// Where the AWS regions are, roughly: great-circle distance is our stand-in for network latency
// when CloudFront has to pick the gateway region nearest a viewer (see edge-origin-selector.ts).

interface Place {
  readonly lat: number;
  readonly lon: number;
}

/** Commercial AWS regions with the coordinates of their metro area. */
export const REGION_LOCATIONS: Readonly<Record<string, Place>> = {
  'us-east-1': { lat: 38.9, lon: -77.4 },
  'us-east-2': { lat: 40.0, lon: -83.0 },
  'us-west-1': { lat: 37.4, lon: -122.0 },
  'us-west-2': { lat: 45.8, lon: -119.7 },
  'ca-central-1': { lat: 45.5, lon: -73.6 },
  'ca-west-1': { lat: 51.0, lon: -114.1 },
  'mx-central-1': { lat: 20.6, lon: -100.4 },
  'sa-east-1': { lat: -23.5, lon: -46.6 },
  'eu-west-1': { lat: 53.3, lon: -6.3 },
  'eu-west-2': { lat: 51.5, lon: -0.1 },
  'eu-west-3': { lat: 48.9, lon: 2.3 },
  'eu-central-1': { lat: 50.1, lon: 8.7 },
  'eu-central-2': { lat: 47.4, lon: 8.5 },
  'eu-north-1': { lat: 59.3, lon: 18.1 },
  'eu-south-1': { lat: 45.5, lon: 9.2 },
  'eu-south-2': { lat: 41.6, lon: -0.9 },
  'il-central-1': { lat: 32.1, lon: 34.8 },
  'me-south-1': { lat: 26.1, lon: 50.6 },
  'me-central-1': { lat: 24.5, lon: 54.4 },
  'af-south-1': { lat: -33.9, lon: 18.4 },
  'ap-south-1': { lat: 19.1, lon: 72.9 },
  'ap-south-2': { lat: 17.4, lon: 78.5 },
  'ap-east-1': { lat: 22.3, lon: 114.2 },
  'ap-east-2': { lat: 25.0, lon: 121.5 },
  'ap-northeast-1': { lat: 35.7, lon: 139.7 },
  'ap-northeast-2': { lat: 37.6, lon: 127.0 },
  'ap-northeast-3': { lat: 34.7, lon: 135.5 },
  'ap-southeast-1': { lat: 1.35, lon: 103.8 },
  'ap-southeast-2': { lat: -33.9, lon: 151.2 },
  'ap-southeast-3': { lat: -6.2, lon: 106.8 },
  'ap-southeast-4': { lat: -37.8, lon: 145.0 },
  'ap-southeast-5': { lat: 3.1, lon: 101.7 },
  'ap-southeast-7': { lat: 13.8, lon: 100.5 },
};

export function isKnownRegion(region: string): boolean {
  return Object.hasOwn(REGION_LOCATIONS, region);
}

/** Great-circle distance in kilometres (haversine). */
export function distanceKm(from: string, to: string): number {
  const a = REGION_LOCATIONS[from];
  const b = REGION_LOCATIONS[to];
  if (!a || !b) throw new RangeError(`unknown region ${!a ? from : to}`);
  const rad = Math.PI / 180;
  const dLat = (b.lat - a.lat) * rad;
  const dLon = (b.lon - a.lon) * rad;
  const h = Math.sin(dLat / 2) ** 2 + Math.cos(a.lat * rad) * Math.cos(b.lat * rad) * Math.sin(dLon / 2) ** 2;
  return 2 * 6371 * Math.asin(Math.min(1, Math.sqrt(h)));
}

/** The candidate closest to `from`; ties go to the earlier candidate (the primary comes first). */
export function nearestRegion(from: string, candidates: readonly string[]): string {
  if (candidates.length === 0) throw new RangeError('no candidate regions');
  let best = candidates[0]!;
  let bestDistance = distanceKm(from, best);
  for (const candidate of candidates.slice(1)) {
    const distance = distanceKm(from, candidate);
    if (distance < bestDistance) {
      best = candidate;
      bestDistance = distance;
    }
  }
  return best;
}

/** For every known region (where Lambda@Edge may run), the nearest of the gateway regions. */
export function nearestRegionTable(gatewayRegions: readonly string[]): Record<string, string> {
  return Object.fromEntries(
    Object.keys(REGION_LOCATIONS).map((region) => [region, nearestRegion(region, gatewayRegions)]),
  );
}
