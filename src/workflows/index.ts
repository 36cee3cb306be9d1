// The workflow bundle's entry: every workflow the worker registers.
export { rollout } from './rollout';
