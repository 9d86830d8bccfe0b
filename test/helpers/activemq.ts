/** The test side of the broker launcher (bench/activemq.ts): when to skip, and when that is a failure. */
import { activeMqMissing } from '../../bench/activemq.js';

export { type ActiveMq, type ActiveMqUser, freePort, startActiveMq } from '../../bench/activemq.js';

/**
 * Why the broker tests cannot run here, or undefined when they can. In CI (`CI=true`) a missing broker is a
 * failure, not a skip: `.ci/run` installs it.
 */
export function activeMqSkipReason(): string | undefined {
  const missing = activeMqMissing();
  if (missing === undefined) return undefined;
  const reason = `${missing}; to run the broker tests: apt-get install -y activemq (it brings OpenJDK 17)`;
  if (process.env.CI === 'true') throw new Error(`CI must run the broker tests, but ${reason}`);
  return reason;
}
