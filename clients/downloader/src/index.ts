export {
  DownloadServerClient,
  type DownloadServerClientOptions,
} from "./download-server-client.js";
