// `aigw deploy check`: will the configured reserved concurrency fit the account's Lambda quota in
// each region? Lambda refuses a reservation that leaves fewer than 100 unreserved executions, and
// a new account's quota is 10, so without this check a first deploy ends in CREATE_FAILED.
// No CDK imports here: the CLI runs it before any synth.
import { GetAccountSettingsCommand, GetFunctionConcurrencyCommand, LambdaClient, paginateListFunctions } from '@aws-sdk/client-lambda';
import type { DeployConfig } from './deploy-config.js';

/** Executions Lambda keeps out of every reservation, per account and region. */
export const LAMBDA_MIN_UNRESERVED = 100;

/** The quota to raise, as Service Quotas names it. */
export const CONCURRENCY_QUOTA = { name: 'Concurrent executions', service: 'AWS Lambda', code: 'L-B99A9384' } as const;

export interface Reservation {
  /** "gateway" or "model <name>@<version>". */
  readonly function: string;
  readonly reserved: number;
}

/** What the config reserves in one region: the same functions in every regional stack. */
export function configuredReservations(config: DeployConfig): Reservation[] {
  const reservations: Reservation[] = [];
  if (config.gatewayReservedConcurrency !== undefined) {
    reservations.push({ function: 'gateway', reserved: config.gatewayReservedConcurrency });
  }
  for (const model of config.models) {
    if (model.reservedConcurrency !== undefined) {
      reservations.push({ function: `model ${model.name}@${model.version}`, reserved: model.reservedConcurrency });
    }
  }
  return reservations;
}

export interface RegionConcurrency {
  readonly region: string;
  /** AccountLimit.ConcurrentExecutions: the account's quota in the region. */
  readonly limit: number;
  /** AccountLimit.UnreservedConcurrentExecutions: the quota less every reservation in place. */
  readonly unreserved: number;
  /** What aigw's own functions (a stack deployed earlier) reserve now: freed when they are updated. */
  readonly reservedByAigw: number;
}

export interface RegionVerdict {
  readonly region: string;
  readonly fits: boolean;
  /** The reservations the config asks for, summed. */
  readonly needed: number;
  /** The most aigw's functions may reserve together in this region. */
  readonly available: number;
  /** One line for the operator: what fits, or what to raise and to how much. */
  readonly message: string;
}

/** Decides whether the configured reservations fit one region's quota; pure, for tests. */
export function judgeRegion(reservations: readonly Reservation[], account: RegionConcurrency): RegionVerdict {
  const needed = reservations.reduce((sum, reservation) => sum + reservation.reserved, 0);
  const available = Math.max(0, account.unreserved + account.reservedByAigw - LAMBDA_MIN_UNRESERVED);
  const { region, limit } = account;
  if (needed === 0) {
    return { region, fits: true, needed, available, message: `${region}: nothing reserved; the account's quota is ${limit} concurrent executions` };
  }
  const list = reservations.map((reservation) => `${reservation.function} ${reservation.reserved}`).join(', ');
  if (needed <= available) {
    return { region, fits: true, needed, available, message: `${region}: reserves ${needed} (${list}) of the ${available} the quota of ${limit} leaves` };
  }
  // The quota at which the other functions' reservations, these and the 100 kept free all fit.
  const reservedByOthers = limit - account.unreserved - account.reservedByAigw;
  const quotaNeeded = needed + LAMBDA_MIN_UNRESERVED + reservedByOthers;
  return {
    region,
    fits: false,
    needed,
    available,
    message:
      `${region}: [deploy] reserves ${needed} concurrent executions (${list}), but the account's quota there is ${limit} ` +
      `with ${account.unreserved} unreserved, and Lambda keeps ${LAMBDA_MIN_UNRESERVED} unreserved, so at most ${available} can be reserved. ` +
      `Raise the Service Quotas quota "${CONCURRENCY_QUOTA.name}" (${CONCURRENCY_QUOTA.service}, code ${CONCURRENCY_QUOTA.code}) ` +
      `in ${region} to at least ${quotaNeeded}, or lower reserved_concurrency (0 = no reservation)`,
  };
}

/**
 * Reads a region's concurrency from the Lambda API: GetAccountSettings, and the reservations of
 * the functions of `stackName` already deployed (CloudFormation names them "<stack>-<id>-<suffix>").
 */
export async function readRegionConcurrency(
  client: LambdaClient,
  region: string,
  stackName: string,
  options: { countAigwReservations: boolean },
): Promise<RegionConcurrency> {
  const settings = await client.send(new GetAccountSettingsCommand({}));
  const limit = settings.AccountLimit?.ConcurrentExecutions;
  const unreserved = settings.AccountLimit?.UnreservedConcurrentExecutions;
  if (limit === undefined || unreserved === undefined) {
    throw new Error(`Lambda GetAccountSettings in ${region} returned no AccountLimit concurrency`);
  }
  let reservedByAigw = 0;
  if (!options.countAigwReservations) return { region, limit, unreserved, reservedByAigw };
  for await (const page of paginateListFunctions({ client }, {})) {
    for (const fn of page.Functions ?? []) {
      if (!fn.FunctionName?.startsWith(`${stackName}-`)) continue;
      const concurrency = await client.send(new GetFunctionConcurrencyCommand({ FunctionName: fn.FunctionName }));
      reservedByAigw += concurrency.ReservedConcurrentExecutions ?? 0;
    }
  }
  return { region, limit, unreserved, reservedByAigw };
}

export interface DeployCheckOptions {
  readonly config: DeployConfig;
  /** The regional stack's name in a region (infra/aigw-app.ts regionalStackName). */
  readonly stackName: (region: string) => string;
  /** A Lambda client per region; tests point it at a local endpoint. */
  readonly lambdaClient: (region: string) => LambdaClient;
}

/** Every region's verdict, in config order. */
export async function checkReservedConcurrency(options: DeployCheckOptions): Promise<RegionVerdict[]> {
  const reservations = configuredReservations(options.config);
  const verdicts: RegionVerdict[] = [];
  for (const region of options.config.regions) {
    const account = await readRegionConcurrency(options.lambdaClient(region), region, options.stackName(region), {
      countAigwReservations: reservations.length > 0,
    });
    verdicts.push(judgeRegion(reservations, account));
  }
  return verdicts;
}
