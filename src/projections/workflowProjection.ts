/**
 * The workflow's read models, one part per thing built: executions, runs and RunState, STF files and TF samples,
 * TF slices, and the problems the agents recorded (refused transitions, rejected messages) or the projection found
 * (invalid events). The parts share one checkpoint and one state (`workflow/state.ts`): a slice's step moves its
 * run's counters, a sample's registration its run's sample count. Each part is given only the event types it reads.
 */
import { composeProjection, type Projection } from './projection.js';
import { executionsPart } from './workflow/executions.js';
import { filesPart } from './workflow/files.js';
import { problemsPart } from './workflow/problems.js';
import { runsPart } from './workflow/runs.js';
import { seriesPart } from './workflow/series.js';
import { slicesPart } from './workflow/slices.js';
import { WORKFLOW_STATE, type WorkflowState } from './workflow/state.js';

export const workflowProjection: Projection<WorkflowState> = composeProjection<WorkflowState>(
  'workflow',
  WORKFLOW_STATE,
  // the series last: it samples the RunState the others have just stepped
  [problemsPart, executionsPart, runsPart, filesPart, slicesPart, seriesPart],
);
