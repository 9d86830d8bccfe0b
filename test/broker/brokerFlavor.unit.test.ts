/**
 * What the gateway sends that differs between ActiveMQ 5 and Artemis (`[broker] flavor`, docs/broker.md): durable
 * subscription names, and the routing type Artemis needs when its acceptor does not map `/topic/` and `/queue/`.
 */
import { describe, expect, it } from 'vitest';
import { subscriptionHeaders } from '../../src/broker/gateway.js';
import { outboundFrame } from '../../src/broker/outbox.js';
import { Recorder } from '../../src/broker/recorder.js';
import { routingTypeOf } from '../../src/broker/stomp.js';
import { brokerConfig } from './helpers.js';

const activemq5 = brokerConfig('stomp://mq:61613');
const artemis = brokerConfig('stomp://mq:61613', { flavor: 'artemis' });

describe('SUBSCRIBE headers by broker flavor', () => {
  it('ActiveMQ 5: topics durable by activemq.subscriptionName, no Artemis headers', () => {
    expect(subscriptionHeaders(activemq5, 'gw', '/topic/epictopic')).toEqual({
      id: 'gw.epictopic',
      ack: 'client-individual',
      'activemq.prefetchSize': '1000',
      'activemq.subscriptionName': 'gw.epictopic',
    });
    expect(subscriptionHeaders(activemq5, 'gw', '/queue/workflow_control')).toEqual({
      id: 'gw.workflow_control',
      ack: 'client-individual',
      'activemq.prefetchSize': '1000',
    });
  });

  it('Artemis: topics durable by durable-subscription-name and MULTICAST, queues ANYCAST', () => {
    expect(subscriptionHeaders(artemis, 'gw', '/topic/panda.results')).toMatchObject({
      id: 'gw.panda.results',
      ack: 'client-individual',
      'durable-subscription-name': 'gw.panda.results',
      'subscription-type': 'MULTICAST',
    });
    expect(subscriptionHeaders(artemis, 'gw', '/topic/panda.results')).not.toHaveProperty('activemq.subscriptionName');
    const queue = subscriptionHeaders(artemis, 'gw', '/queue/workflow_control');
    expect(queue).toMatchObject({ 'subscription-type': 'ANYCAST' });
    expect(queue).not.toHaveProperty('durable-subscription-name');
  });
});

describe('SEND headers by broker flavor', () => {
  const recorder = new Recorder({ namespace: 'torre1', maxBodyBytes: 524_288, leaseFactor: 3, gatewayId: 'gw' });
  const stfGen = {
    id: 'e1',
    type: 'stf_gen',
    data: {
      msg_type: 'stf_gen',
      namespace: 'torre1',
      sender: 'daq',
      run_id: '100010',
      execution_id: 'x-0001',
      filename: 'swf.100010.000001.stf',
    },
  };

  it('Artemis: destination-type from the destination (MULTICAST for a topic, ANYCAST for a queue)', () => {
    expect(outboundFrame(stfGen, { broker: artemis, gatewayId: 'gw', recorder })?.headers).toMatchObject({
      'destination-type': 'MULTICAST',
      msg_type: 'stf_gen',
      run_id: '100010',
    });
    const toQueue = brokerConfig('stomp://mq:61613', { flavor: 'artemis', epic_destination: '/queue/epic' });
    expect(outboundFrame(stfGen, { broker: toQueue, gatewayId: 'gw', recorder })).toMatchObject({
      destination: '/queue/epic',
      headers: { 'destination-type': 'ANYCAST' },
    });
  });

  it('ActiveMQ 5: no destination-type (the prefix says it)', () => {
    expect(outboundFrame(stfGen, { broker: activemq5, gatewayId: 'gw', recorder })?.headers).not.toHaveProperty(
      'destination-type',
    );
  });

  it('refuses a destination without /topic/ or /queue/', () => {
    expect(() => routingTypeOf('epictopic')).toThrow('destination "epictopic" must start with /topic/ or /queue/');
  });
});
