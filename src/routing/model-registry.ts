// Every model version this gateway serves, by the ids a client may send: the exact version
// (`qwen@4`) and the bare name (`qwen`), which means the first version listed in the config.
import type { ModelBackend } from '../backends/model-backend.js';

/** `qwen@4` → { name: 'qwen', version: '4' }; a bare name has no version. */
export function parseModelId(id: string): { name: string; version?: string } {
  const at = id.indexOf('@');
  return at < 0 ? { name: id } : { name: id.slice(0, at), version: id.slice(at + 1) };
}

export class DuplicateModelError extends Error {
  override readonly name = 'DuplicateModelError';
}

export class ModelRegistry {
  private readonly byId = new Map<string, ModelBackend>();
  private readonly versions: ModelBackend[] = [];

  /**
   * Backends in configuration order; each one's `id` is its model name and `version` its
   * `name@version`. A bare name serves its first listed version, so adding a new version after
   * it never moves traffic: only an alias does.
   */
  constructor(backends: Iterable<ModelBackend>) {
    for (const backend of backends) {
      if (this.byId.has(backend.version)) throw new DuplicateModelError(`model ${backend.version} is configured twice`);
      this.byId.set(backend.version, backend);
      this.versions.push(backend);
      if (!this.byId.has(backend.id)) this.byId.set(backend.id, backend);
    }
  }

  /** The backend of an exact version or a bare name; undefined when neither is served here. */
  get(id: string): ModelBackend | undefined {
    return this.byId.get(id);
  }

  /** Every served version, in configuration order. */
  list(): readonly ModelBackend[] {
    return this.versions;
  }

  /** Every id a client may send besides aliases, to its backend: bare names first, then exact versions. */
  backends(): Map<string, ModelBackend> {
    const names = [...new Set(this.versions.map((b) => b.id))];
    return new Map([...names.map((name) => [name, this.byId.get(name)!] as const), ...this.versions.map((b) => [b.version, b] as const)]);
  }
}
