/**
 * The Dockerfile and docker-compose.yml agree (no Docker engine is needed to read them): every directory the compose
 * file mounts into an swf-es container exists in the image and belongs to the user the image runs as.
 */
import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { SERVER_MAX_APPEND_SIZE_LIMIT } from '../../src/eventStore/esdb/mapping.js';

const root = new URL('../../', import.meta.url);
const dockerfile = readFileSync(new URL('Dockerfile', root), 'utf8');
const compose = readFileSync(new URL('docker-compose.yml', root), 'utf8');

/** The final stage's instructions, continuation lines joined. */
const finalStage = (): string[] => {
  const stages = dockerfile.replace(/\\\n\s*/g, ' ').split(/^FROM /m);
  return stages
    .at(-1)!
    .split('\n')
    .map((l) => l.trim());
};

/** Container paths of volumes mounted into the services built from this repository (`build: .`). */
function swfMounts(): string[] {
  const services = compose.split(/^ {2}(?=[a-z-]+:)/m);
  const built = services.filter((s) => /\bbuild: \.|<<: \*agent/.test(s));
  return built.flatMap((s) => [...s.matchAll(/^\s+- [\w.-]+:(\/[\w/.-]+)\s*$/gm)].map((m) => m[1]!));
}

describe('the swf-es image', () => {
  it('runs as node', () => {
    expect(
      finalStage()
        .filter((l) => l.startsWith('USER '))
        .at(-1),
    ).toBe('USER node');
  });

  it('creates every directory the compose file mounts, owned by node', () => {
    const mounts = swfMounts();
    expect(mounts).toContain('/data');
    const runs = finalStage().filter((l) => l.startsWith('RUN '));
    for (const dir of mounts) {
      expect(
        runs.some((r) => new RegExp(`mkdir -p .*${dir}(\\s|$)`).test(r)),
        `mkdir ${dir}`,
      ).toBe(true);
      expect(
        runs.some((r) => new RegExp(`chown (-R )?node:node .*${dir}(\\s|$)`).test(r)),
        `chown ${dir}`,
      ).toBe(true);
    }
  });
});

describe('the compose file', () => {
  it('sets no EventStoreDB MaxAppendSize the server would refuse to start with', () => {
    const set = /EVENTSTORE_MAX_APPEND_SIZE:\s*'?(\d+)'?/.exec(compose);
    if (set) expect(Number(set[1])).toBeLessThanOrEqual(SERVER_MAX_APPEND_SIZE_LIMIT);
    expect(SERVER_MAX_APPEND_SIZE_LIMIT).toBe(16_767_216);
  });

  it('runs no projections (swf-es reads none of their output)', () => {
    expect(compose).toMatch(/EVENTSTORE_RUN_PROJECTIONS: None/);
    expect(compose).not.toMatch(/EVENTSTORE_START_STANDARD_PROJECTIONS: 'true'/);
  });
});
