export {
  type Corpus,
  type CorpusOptions,
  createCorpus,
  defaultCorpusSeed,
  defaultCorpusSize,
  type RegistryDocument,
  type SearchFilters,
} from "./corpus.js";
export { parseRegistryDate, registryDate } from "./dates.js";
export { defaultFaults, type FaultSettings, InvalidFaults, validateFaultUpdate } from "./faults.js";
export {
  type ResultsPageView,
  registryTitle,
  renderCaptchaPage,
  renderDocumentPage,
  renderResultsPage,
  renderSearchFormPage,
} from "./pages.js";
export { decisionForms, instanceTypes, justiceKinds, regions } from "./reference-data.js";
export {
  BadSearchForm,
  defaultItemsPerPage,
  maxItemsPerPage,
  parseSearchForm,
  type SearchRequest,
} from "./search-form.js";
export {
  type RegistrySimulator,
  type RegistrySimulatorOptions,
  startRegistrySimulator,
} from "./server.js";
export type { SimulatorStats } from "./stats.js";
