// The generated contracts of every Gate service, plus the third-party protos the runtime
// serves (health, reflection) and reads (google.api.http). Regenerate with `npm run generate`.
import type { DescFile } from "@bufbuild/protobuf";
import { file_gate_clients_v1_clients_service } from "./gen/gate/clients/v1/clients_service_pb.js";
import { file_gate_events_v1_events } from "./gen/gate/events/v1/events_pb.js";
import { file_gate_reports_v1_import_service } from "./gen/gate/reports/v1/import_service_pb.js";
import { file_gate_reports_v1_query_service } from "./gen/gate/reports/v1/query_service_pb.js";
import { file_gate_reports_v1_report_service } from "./gen/gate/reports/v1/report_service_pb.js";
import { file_gate_stats_v1_analytics } from "./gen/gate/stats/v1/analytics_pb.js";
import { file_gate_stats_v1_processing } from "./gen/gate/stats/v1/processing_pb.js";
import { file_gate_tasks_v1_tasks_service } from "./gen/gate/tasks/v1/tasks_service_pb.js";
import { file_gate_telemetry_v1_devices_service } from "./gen/gate/telemetry/v1/devices_service_pb.js";
import { file_gate_telemetry_v1_metrics_service } from "./gen/gate/telemetry/v1/metrics_service_pb.js";
import { file_gate_telemetry_v1_signals_service } from "./gen/gate/telemetry/v1/signals_service_pb.js";
import { file_gate_telemetry_v1_users_service } from "./gen/gate/telemetry/v1/users_service_pb.js";
import { file_gate_validate_v1_rules } from "./gen/gate/validate/v1/rules_pb.js";

export * as clientsV1 from "./gen/gate/clients/v1/clients_service_pb.js";
export * as eventsV1 from "./gen/gate/events/v1/events_pb.js";
export * as reportsImportV1 from "./gen/gate/reports/v1/import_service_pb.js";
export * as reportsQueryV1 from "./gen/gate/reports/v1/query_service_pb.js";
export * as reportsReportV1 from "./gen/gate/reports/v1/report_service_pb.js";
export * as reportsV1 from "./gen/gate/reports/v1/resources_pb.js";
export * as statsAnalyticsV1 from "./gen/gate/stats/v1/analytics_pb.js";
export * as statsProcessingV1 from "./gen/gate/stats/v1/processing_pb.js";
export * as tasksV1 from "./gen/gate/tasks/v1/tasks_service_pb.js";
export * as telemetryDevicesV1 from "./gen/gate/telemetry/v1/devices_service_pb.js";
export * as telemetryMetricsV1 from "./gen/gate/telemetry/v1/metrics_service_pb.js";
export * as telemetryV1 from "./gen/gate/telemetry/v1/resources_pb.js";
export * as telemetrySignalsV1 from "./gen/gate/telemetry/v1/signals_service_pb.js";
export * as telemetryUsersV1 from "./gen/gate/telemetry/v1/users_service_pb.js";
export * as validateV1 from "./gen/gate/validate/v1/rules_pb.js";
export * as googleApi from "./gen/google/api/annotations_pb.js";
export * as googleApiHttp from "./gen/google/api/http_pb.js";
export * as googleRpc from "./gen/google/rpc/status_pb.js";
export * as healthV1 from "./gen/grpc/health/v1/health_pb.js";
export * as reflectionV1 from "./gen/grpc/reflection/v1/reflection_pb.js";
export * as reflectionV1alpha from "./gen/grpc/reflection/v1alpha/reflection_pb.js";

/** Every Gate contract file, for reflection and for building descriptor sets. */
export const gateFiles: readonly DescFile[] = [
  file_gate_clients_v1_clients_service,
  file_gate_tasks_v1_tasks_service,
  file_gate_telemetry_v1_users_service,
  file_gate_telemetry_v1_devices_service,
  file_gate_telemetry_v1_metrics_service,
  file_gate_telemetry_v1_signals_service,
  file_gate_stats_v1_processing,
  file_gate_stats_v1_analytics,
  file_gate_reports_v1_report_service,
  file_gate_reports_v1_query_service,
  file_gate_reports_v1_import_service,
  file_gate_events_v1_events,
  file_gate_validate_v1_rules,
];
