"""govflow: a workflow-and-rules engine framework for configurable front-line governance.

Subpackages: ``govflow.engine`` (the core), ``govflow.api`` (REST),
``govflow.plugins`` (the hook contract and built-in plugins). The composition
root is :mod:`govflow.bootstrap`; the CLI is :mod:`govflow.cli`.
"""

__version__ = "0.1.0"
