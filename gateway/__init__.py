"""The HTTP gateway: REST API, Slack, email confirmation pages, inbound
webhooks, health and metrics, and the Gradio approver UI (FastAPI)."""
