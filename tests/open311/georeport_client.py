"""PyPI's `georeport` client (an Open311 GeoReport v2 library) against the
gateway, unchanged, in both formats: the service list, a definition, a
request by id through GET requests and GET request.

Usage: georeport_client.py ENDPOINT JURISDICTION SERVICE_REQUEST_ID
Prints "ok <what>" per check; fails at the first that does not hold.
"""

import sys

from georeport import GeoReport


def main() -> None:
    endpoint, jurisdiction, sr = sys.argv[1:4]
    for output_format in ("xml", "json"):
        client = GeoReport(endpoint, jurisdiction=jurisdiction, output_format=output_format)
        services = client.get_service_list()
        parking = [s for s in services if s["service_code"] == "illegal-parking"]
        assert parking, "illegal-parking is listed"
        print(f"ok {output_format} services: {len(services)}")
        definition = client.get_service_definition("illegal-parking")
        attributes = definition["attributes"]
        if output_format == "xml":
            attributes = attributes["attribute"]
            attributes = attributes if isinstance(attributes, list) else [attributes]
        assert attributes[0]["code"] == "descriptor", attributes
        print(f"ok {output_format} definition: {attributes[0]['datatype']}")
        listed = client.get_service_requests(service_request_id=sr)
        record = listed if isinstance(listed, dict) else listed[0]
        assert record["service_request_id"] == sr, record
        assert record["status"] in ("open", "closed"), record
        print(f"ok {output_format} requests?service_request_id: {record['status']}")
        one = client.get_service_request(sr)
        assert one["service_request_id"] == sr, one
        print(f"ok {output_format} request: {one['service_name']}, {one['status']}")


if __name__ == "__main__":
    main()
