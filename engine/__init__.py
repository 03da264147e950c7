"""govflow.engine: cases, the workflow runtime over SpiffWorkflow, persistence, authorization.

The engine imports neither ``govflow.api`` nor any web framework, and knows
plugins only through the protocols it defines (``dispatch.Dispatcher``).
"""
