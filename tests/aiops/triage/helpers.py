"""Data shared by the triage tests: the product description's alert storm and capacity inputs."""
from aiops.testing.runbook_queries import README_ALERTS

PRODUCT_ALERTS = README_ALERTS  # the README's generic alert example

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
