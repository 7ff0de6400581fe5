// Entry point kept at the path the rest of the project imports (`#local/ecourtdate-simulator.ts`);
// the implementation lives in ./ecourtdate-simulator/.
export * from './ecourtdate-simulator/index.ts';
