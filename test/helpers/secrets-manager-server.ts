// A Secrets Manager endpoint on 127.0.0.1 speaking the service's JSON protocol (GetSecretValue
// by version stage), for the real SDK client: no local Secrets Manager exists to run instead.
import { createServer, type IncomingMessage, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';

export interface SecretsManagerServer {
  endpoint: string;
  /** Sets the stages of a secret; a stage left out does not exist. */
  setSecret(secretId: string, stages: { AWSCURRENT: string; AWSPREVIOUS?: string }): void;
  /** While true, every call answers 500 InternalServiceError. */
  failing: boolean;
  /** Every GetSecretValue call, in order. */
  readonly calls: { secretId: string; stage: string }[];
  stop(): Promise<void>;
}

export async function startSecretsManagerServer(): Promise<SecretsManagerServer> {
  const secrets = new Map<string, Record<string, string>>();
  const calls: { secretId: string; stage: string }[] = [];
  const state = { failing: false };

  const answer = (res: ServerResponse, status: number, body: object, errorType?: string) => {
    res.writeHead(status, {
      'content-type': 'application/x-amz-json-1.1',
      'x-amzn-requestid': crypto.randomUUID(),
      ...(errorType ? { 'x-amzn-errortype': errorType } : {}),
    });
    res.end(JSON.stringify(errorType ? { __type: errorType, ...body } : body));
  };

  const server = createServer(async (req: IncomingMessage, res: ServerResponse) => {
    const chunks: Buffer[] = [];
    for await (const chunk of req) chunks.push(chunk as Buffer);
    if (req.headers['x-amz-target'] !== 'secretsmanager.GetSecretValue') {
      answer(res, 400, { message: `unsupported operation ${String(req.headers['x-amz-target'])}` }, 'InvalidRequestException');
      return;
    }
    const input = JSON.parse(Buffer.concat(chunks).toString('utf8')) as { SecretId: string; VersionStage?: string };
    const stage = input.VersionStage ?? 'AWSCURRENT';
    calls.push({ secretId: input.SecretId, stage });
    if (state.failing) {
      answer(res, 500, { message: 'An error occurred on the server side.' }, 'InternalServiceError');
      return;
    }
    const value = secrets.get(input.SecretId)?.[stage];
    if (value === undefined) {
      answer(res, 400, { message: "Secrets Manager can't find the specified secret value for staging label: " + stage }, 'ResourceNotFoundException');
      return;
    }
    answer(res, 200, {
      ARN: `arn:aws:secretsmanager:us-east-1:123456789012:secret:${input.SecretId}-AbCdEf`,
      Name: input.SecretId,
      VersionId: `${stage.toLowerCase()}-version`,
      SecretString: value,
      VersionStages: [stage],
      CreatedDate: 1773480413,
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;
  return {
    endpoint: `http://127.0.0.1:${port}`,
    setSecret: (secretId, stages) => void secrets.set(secretId, { ...stages }),
    get failing() {
      return state.failing;
    },
    set failing(value: boolean) {
      state.failing = value;
    },
    calls,
    stop: () =>
      new Promise<void>((resolve) => {
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  };
}
