export { consoleDir } from "./console-site.js";
export { findModules, serviceModules } from "./modules.js";
export {
  migrate,
  openDatabase,
  type PlatformOptions,
  type RunningPlatform,
  readConfiguration,
  startPlatform,
} from "./platform.js";
