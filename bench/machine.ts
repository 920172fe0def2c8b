// What a benchmark ran on, recorded beside its results: which engine wins changes with the CPU
// (llama.cpp loads a build per CPU family, and on an Intel Xeon with AMX it outran aigw 2x).
import { readFileSync } from 'node:fs';
import { availableParallelism, cpus } from 'node:os';

const FEATURES = ['avx2', 'avx512f', 'avx512_vnni', 'avx512_bf16', 'amx_int8'];

export interface MachineInfo {
  cpu: string;
  cores: number;
  /** The vector extensions the engines choose their kernels by, as /proc/cpuinfo lists them. */
  features: string[];
}

export function machineInfo(): MachineInfo {
  let flags = new Set<string>();
  try {
    const line = readFileSync('/proc/cpuinfo', 'utf8').split('\n').find((l) => l.startsWith('flags'));
    flags = new Set(line?.split(':')[1]?.trim().split(/\s+/) ?? []);
  } catch {
    // Not Linux: the model name alone is recorded.
  }
  return { cpu: cpus()[0]?.model ?? 'unknown', cores: availableParallelism(), features: FEATURES.filter((f) => flags.has(f)) };
}
