import { loadConfig } from '../../config/index.js';
import { brokerSchema } from '../../config/schema.js';
import { openEventStore } from '../../eventStore/open.js';
import { describeError, ValidationError } from '../../errors.js';
import { startGateway } from '../../broker/gateway.js';
import { parseBrokerUrl } from '../../broker/stomp.js';
import { issuesToError } from '../../messages/index.js';
import type { Command } from '../context.js';
import { makeLogger, parse, STORE_OPTION, storeUrl } from '../context.js';

const usage =
  'swf gateway --broker stomp://HOST:PORT [--user U --password P] [--namespace NS] [--record-only] ' +
  '[--config NAME|PATH] [--testbed PATH] [--set broker.key=value]... [--store URL]';

const options = {
  ...STORE_OPTION,
  broker: { type: 'string' },
  user: { type: 'string' },
  password: { type: 'string' },
  namespace: { type: 'string' },
  'record-only': { type: 'boolean' },
  config: { type: 'string' },
  testbed: { type: 'string' },
  set: { type: 'string', multiple: true },
} as const;

export const gatewayCommand: Command = {
  name: 'gateway',
  summary:
    "join the store to the testbed's STOMP broker: record every frame as an event, publish what swf-es agents append",
  usage,
  options,
  async run(argv, io) {
    const { values, positionals } = parse(argv, options, usage);
    if (values.help) {
      io.stdout.write(
        `${usage}\n\n` +
          'Runs until Ctrl-C (or SIGTERM). Inbound, every frame of the [broker] destinations becomes one event (its\n' +
          "body as received, destination, headers and message id in metadata, its id derived from the broker's message\n" +
          'id), acknowledged only once durably committed; frames that are not testbed messages are recorded as\n' +
          'BrokerMessageRejected. Outbound (unless --record-only), what swf-es agents append in the namespace is\n' +
          'published to the destinations real agents use, each frame counted as sent on its receipt. docs/broker.md\n' +
          'has the three deployments.\n\n' +
          '  --broker URL     stomp://HOST:PORT (default: SWF_BROKER_URL, else [broker] url, stomp://127.0.0.1:61613)\n' +
          '  --user/--password  STOMP login and passcode (or SWF_BROKER_USER / SWF_BROKER_PASSWORD, which keep the\n' +
          '                   password out of the process list; the flags beat the environment, which beats [broker])\n' +
          "  --namespace NS   the testbed namespace (default: the testbed file's); other namespaces are recorded, marked\n" +
          '  --record-only    publish nothing\n' +
          '  --set broker.KEY=VALUE  any [broker] key, e.g. --set \'broker.destinations=["/topic/epictopic"]\'\n',
      );
      return 0;
    }
    if (positionals.length > 0) throw new ValidationError(`unexpected argument '${positionals[0]}'; usage: ${usage}`);
    const loaded = loadConfig({
      ...(values.config !== undefined
        ? /[/\\]|\.toml$/.test(values.config)
          ? { path: values.config }
          : { name: values.config }
        : {}),
      ...(values.testbed !== undefined ? { testbed: values.testbed } : {}),
      set: values.set ?? [],
      env: io.env,
      cwd: io.cwd,
    });
    // The flags beat the environment, which beats the configuration (`[broker]`, `--set broker.KEY`): a password
    // in SWF_BROKER_PASSWORD stays out of the process list and out of files.
    const env = (name: string): string | undefined => io.env[name] || undefined;
    const fromEnv = { url: env('SWF_BROKER_URL'), user: env('SWF_BROKER_USER'), password: env('SWF_BROKER_PASSWORD') };
    if (fromEnv.url !== undefined && values.broker === undefined) {
      try {
        parseBrokerUrl(fromEnv.url);
      } catch (e: unknown) {
        throw new ValidationError(`SWF_BROKER_URL: ${describeError(e)}`, { field: 'SWF_BROKER_URL' });
      }
    }
    const section = {
      ...(loaded.config.broker ?? {}),
      ...Object.fromEntries(Object.entries(fromEnv).filter(([, v]) => v !== undefined)),
      ...(values.broker !== undefined ? { url: values.broker } : {}),
      ...(values.user !== undefined ? { user: values.user } : {}),
      ...(values.password !== undefined ? { password: values.password } : {}),
    };
    if (values.broker !== undefined) parseBrokerUrl(values.broker);
    const checked = brokerSchema.safeParse(section);
    if (!checked.success) throw issuesToError('[broker] configuration', checked.error.issues, section);
    const broker = checked.data;
    if (values.namespace !== undefined && !/^[A-Za-z0-9._-]{1,100}$/.test(values.namespace)) {
      throw new ValidationError(
        `--namespace must be 1-100 letters, digits, '.', '_' or '-', got '${values.namespace}'`,
        {
          field: 'namespace',
        },
      );
    }
    const namespace = values.namespace ?? loaded.config.testbed.namespace;
    // Commits acknowledge frames to the broker, which then forgets them: they must survive a power cut.
    const store = await openEventStore(storeUrl(values, io), { durable: true });
    const logger = makeLogger(io);
    const gateway = startGateway({
      store,
      broker,
      namespace,
      logger,
      leaseFactor: loaded.config.fast_processing.slice_lease_factor,
      outbound: values['record-only'] !== true,
      // Recording only, nobody will retry a real run's slices; taking part, swf-es agents act with this configuration.
      ...(values['record-only'] ? {} : { parameterValues: loaded.parameterValues }),
    });
    io.stderr.write(
      `swf gateway: ${broker.url} <-> ${store.url} in namespace ${namespace}` +
        `${values['record-only'] ? ' (record only)' : ''}; Ctrl-C stops it\n`,
    );
    const stop = (): void => {
      void gateway.stop();
    };
    process.once('SIGINT', stop);
    process.once('SIGTERM', stop);
    gateway.ready.then(
      () => io.stderr.write(`swf gateway: connected; recording ${broker.destinations.join(', ')}\n`),
      () => {},
    );
    try {
      await gateway.done;
    } finally {
      process.off('SIGINT', stop);
      process.off('SIGTERM', stop);
      await store.close();
    }
    const s = gateway.stats;
    io.stderr.write(
      `swf gateway: stopped; recorded ${s.recorded} frames (${s.rejected} rejected, ${s.foreign} of other namespaces), ` +
        `skipped ${s.ownSkipped} of its own, published ${s.published}\n`,
    );
    return 0;
  },
};
