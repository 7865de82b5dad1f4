from agents.connectors.base import ActionDescription, Connector, ConnectorError, get_connector, register

__all__ = ["ActionDescription", "Connector", "ConnectorError", "get_connector", "register"]
