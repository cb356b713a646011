//! Discovery, the services and a service's definition, and the OpenAPI
//! description of the gateway.

use super::*;

pub async fn discovery_xml(state: Shared) -> Response {
    discovery(state, Format::Xml)
}

pub async fn discovery_json(state: Shared) -> Response {
    discovery(state, Format::Json)
}

fn discovery(State(gateway): Shared, format: Format) -> Response {
    let formats = Value::List(
        "format",
        vec![Value::text("text/xml"), Value::text("application/json")],
    );
    let document = Value::Object(vec![
        ("changeset", Value::text(CHANGESET)),
        ("contact", Value::text(gateway.contact.clone())),
        ("key_service", Value::text(gateway.key_service.clone())),
        (
            "endpoints",
            Value::List(
                "endpoint",
                vec![Value::Object(vec![
                    ("specification", Value::text(SPECIFICATION)),
                    ("url", Value::text(gateway.public_url.clone())),
                    ("changeset", Value::text(CHANGESET)),
                    ("type", Value::text("production")),
                    ("formats", formats),
                ])],
            ),
        ),
    ]);
    answer(format, StatusCode::OK, "discovery", &document)
}

pub async fn services_xml(state: Shared, query: Query<Vec<(String, String)>>) -> Response {
    services(state, query, Format::Xml).await
}

pub async fn services_json(state: Shared, query: Query<Vec<(String, String)>>) -> Response {
    services(state, query, Format::Json).await
}

async fn services(
    State(gateway): Shared,
    Query(query): Query<Vec<(String, String)>>,
    format: Format,
) -> Response {
    if let Err(error) = gateway.check_jurisdiction(&Params(query)) {
        return error.render(format);
    }
    let services = match gateway.services().await {
        Ok(services) => services,
        Err(error) => return error.render(format),
    };
    let list = Value::List(
        "service",
        services
            .iter()
            .map(|service| {
                Value::Object(vec![
                    ("service_code", Value::text(service.code.clone())),
                    ("service_name", Value::text(service.name.clone())),
                    ("description", Value::text(service.description.clone())),
                    ("metadata", Value::Bool(service.metadata())),
                    ("type", Value::text("realtime")),
                    ("keywords", Value::text_or_null(service.keywords.join(","))),
                    ("group", Value::text(service.group.clone())),
                ])
            })
            .collect(),
    );
    answer(format, StatusCode::OK, "services", &list)
}

pub async fn service_definition(
    State(gateway): Shared,
    Path(file): Path<String>,
    Query(query): Query<Vec<(String, String)>>,
) -> Response {
    let Some((code, format)) = Format::split(&file) else {
        return Open311Error::not_found("no such resource: use .xml or .json").render(Format::Xml);
    };
    if let Err(error) = gateway.check_jurisdiction(&Params(query)) {
        return error.render(format);
    }
    let service = match gateway.catalog.find(&gateway.tokens, code).await {
        Ok(Some(service)) => service,
        Ok(None) => {
            return Open311Error::not_found(format!("service_code {code} is not a service"))
                .render(format);
        }
        Err(status) => return Open311Error::from_status(&status, "routing").render(format),
    };
    let attributes = if service.metadata() {
        vec![Value::Object(vec![
            ("variable", Value::Bool(true)),
            ("code", Value::text("descriptor")),
            ("datatype", Value::text("singlevaluelist")),
            ("required", Value::Bool(!service.any_descriptor)),
            (
                "datatype_description",
                Value::text(if service.any_descriptor {
                    "Optional: the kind of problem, if it is one of these"
                } else {
                    "The kind of problem: one of these"
                }),
            ),
            ("order", Value::Integer(1)),
            ("description", Value::text("What kind of problem is it?")),
            (
                "values",
                Value::List(
                    "value",
                    service
                        .descriptors
                        .iter()
                        .map(|descriptor| {
                            Value::Object(vec![
                                ("key", Value::text(descriptor.clone())),
                                ("name", Value::text(descriptor.clone())),
                            ])
                        })
                        .collect(),
                ),
            ),
        ])]
    } else {
        Vec::new()
    };
    let definition = Value::Object(vec![
        ("service_code", Value::text(service.code.clone())),
        ("attributes", Value::List("attribute", attributes)),
    ]);
    answer(format, StatusCode::OK, "service_definition", &definition)
}

/// The OpenAPI description of this gateway.
pub async fn openapi() -> Response {
    (
        [(header::CONTENT_TYPE, "application/json")],
        include_str!("../../openapi.json"),
    )
        .into_response()
}
