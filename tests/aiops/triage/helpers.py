"""Data shared by the triage tests: the product description's alert storm and capacity inputs."""

PRODUCT_ALERTS = [
    dict(alert_name="ErrorRateHigh", service="payment-gateway", severity="critical",
         message="Error rate 4.7% exceeds threshold 1%", timestamp="2024-10-15T14:23:00Z",
         labels={"namespace": "payments", "team": "platform"}, value=4.7),
    dict(alert_name="PodCrashLoopBackOff", service="payment-gateway", severity="critical",
         message="Pod payment-gw-def34 in CrashLoopBackOff (47 restarts)", timestamp="2024-10-15T14:23:05Z",
         labels={"namespace": "payments", "pod": "payment-gw-def34"}),
    dict(alert_name="PodCrashLoopBackOff", service="payment-gateway", severity="critical",
         message="Pod payment-gw-ghi56 in CrashLoopBackOff (32 restarts)", timestamp="2024-10-15T14:23:06Z",
         labels={"namespace": "payments", "pod": "payment-gw-ghi56"}),
    dict(alert_name="LatencyP99High", service="payment-gateway", severity="warning",
         message="P99 latency 2100ms exceeds SLO 500ms", timestamp="2024-10-15T14:23:10Z",
         labels={"namespace": "payments"}, value=2100),
    dict(alert_name="CertExpiryWarning", service="auth-service", severity="warning",
         message="TLS certificate expires in 14 days", timestamp="2024-10-15T14:00:00Z", labels={"namespace": "auth"}),
]

PAYMENT = {"service": "payment-gateway",
           "current": {"pods": 5, "cpu_avg": "65%", "cpu_peak": "88%", "memory_avg": "72%", "memory_peak": "95%",
                       "disk_usage": "67%", "connections_avg": 85, "connections_max": 200,
                       "requests_per_second": 1200},
           "trend_7d": {"cpu_avg_change": "+8%", "memory_avg_change": "+12%", "traffic_change": "+15%",
                        "error_rate_change": "+0.3%"},
           "upcoming": {"expected_traffic_increase": "Black Friday in 6 weeks — expected 3x traffic"},
           "slo": {"error_rate": "< 0.1%", "p99_latency": "< 500ms"}}
AUTH = {"service": "auth-service", "current": {"pods": 4, "cpu_avg": "35%", "cpu_peak": "52%", "memory_avg": "45%",
                                               "memory_peak": "58%", "disk_usage": "23%"},
        "trend_7d": {"cpu_avg_change": "+2%", "memory_avg_change": "+1%"}}
