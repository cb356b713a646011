#!/usr/bin/perl
# FixMyStreet's Open311 client conventions, against the gateway: the XML
# paths only, its XML::Simple parse settings copied verbatim from
# perllib/Open311.pm (`_get_xml_object`), its error loop (`_process_error`),
# and its form POST (HTTP::Request::Common, url-encoded, with
# jurisdiction_id, api_key, attribute[...] for the category's extra fields,
# the non-standard `deviceid`, and one media_url). It reads the new request's
# id from the first <request>'s <service_request_id>, as FixMyStreet does.
#
# Usage: fixmystreet_client.pl ENDPOINT API_KEY JURISDICTION LAT LONG
# Prints "ok <what>" per check; dies at the first that fails.
use strict;
use warnings;
use HTTP::Request::Common qw(POST);
use LWP::UserAgent;
use XML::Simple;

my ($endpoint, $api_key, $jurisdiction, $lat, $long) = @ARGV;
my $ua = LWP::UserAgent->new(timeout => 30);

# perllib/Open311.pm, _get_xml_object
sub get_xml_object {
    my $xml = shift;
    my $simple = XML::Simple->new(
        ForceArray => [ qw/ service attribute value request error request_update / ],
        KeyAttr => {},
        GroupTags => {
            services => 'service',
            attributes => 'attribute',
            values => 'value',
            service_requests => 'request',
            errors => 'error',
            service_request_updates => 'request_update',
        },
        SuppressEmpty => undef,
    );
    return $simple->XMLin($xml);
}

# perllib/Open311.pm, _process_error
sub process_error {
    my $xml = shift;
    my $obj = eval { get_xml_object($xml) };
    my $msg = '';
    if ($obj) {
        foreach my $error (@{ $obj->{error} }) {
            $msg .= sprintf("%s: %s\n", $error->{code}, $error->{description});
        }
    } else {
        $msg = 'unknown error';
    }
    return $msg;
}

sub get {
    my ($path, %params) = @_;
    $params{jurisdiction_id} = $jurisdiction;
    my $uri = URI->new("$endpoint/$path");
    $uri->query_form(%params);
    my $res = $ua->get($uri);
    die "GET $path: " . $res->status_line . "\n" . process_error($res->decoded_content) unless $res->is_success;
    return get_xml_object($res->decoded_content);
}

my $services = get('services.xml');
my ($parking) = grep { $_->{service_code} eq 'illegal-parking' } @{ $services->{service} };
die "no illegal-parking service\n" unless $parking;
die "illegal-parking has no metadata\n" unless lc($parking->{metadata}) eq 'true';
print "ok services.xml: ", scalar @{ $services->{service} }, " services, illegal-parking in group $parking->{group}\n";

my $definition = get('services/illegal-parking.xml');
my @attributes = sort { $a->{order} <=> $b->{order} } @{ $definition->{attributes} };
die "no descriptor attribute\n" unless $attributes[0]->{code} eq 'descriptor';
my @values = map { $_->{key} } @{ $attributes[0]->{values} };
die "no Blocked Hydrant value\n" unless grep { $_ eq 'Blocked Hydrant' } @values;
print "ok services/illegal-parking.xml: descriptor, ", scalar @values, " values\n";

my $req = POST "$endpoint/requests.xml", [
    jurisdiction_id => $jurisdiction,
    api_key => $api_key,
    service_code => 'illegal-parking',
    description => "Car blocking the hydrant\n\nA grey sedan has been on the hydrant since noon.\n\nhttps://fixmystreet.example/report/42",
    first_name => 'Dana',
    last_name => 'Example',
    email => 'dana.fms@example.org',
    lat => $lat,
    long => $long,
    'attribute[descriptor]' => 'Blocked Hydrant',
    'attribute[fms_extra_title]' => 'Car on the hydrant',
    deviceid => 'fixmystreet',
    media_url => 'https://fixmystreet.example/photo/42.jpeg',
];
my $res = $ua->request($req);
die "POST requests.xml: " . $res->status_line . "\n" . process_error($res->decoded_content) unless $res->is_success;
my $obj = get_xml_object($res->decoded_content);
my $request_id = $obj->{request}->[0]->{service_request_id};
die "no service_request_id in the first <request>\n" unless $request_id && !ref $request_id;
print "ok POST requests.xml: service_request_id $request_id\n";

my $requests = get('requests.xml', service_request_id => $request_id);
die "GET requests.xml did not find $request_id\n" unless $requests->{request}->[0]->{service_request_id} eq $request_id;
die "not open\n" unless $requests->{request}->[0]->{status} eq 'open';
print "ok requests.xml?service_request_id: $request_id is $requests->{request}->[0]->{status}\n";

my $token = get("tokens/$request_id.xml");
die "tokens: another id\n" unless $token->{request}->[0]->{service_request_id} eq $request_id;
print "ok tokens/$request_id.xml\n";

$req = POST "$endpoint/requests.xml", [ jurisdiction_id => $jurisdiction, api_key => 'wrong', service_code => 'illegal-parking', lat => $lat, long => $long ];
$res = $ua->request($req);
die "a wrong key was accepted\n" if $res->is_success;
my $error = process_error($res->decoded_content);
die "the error does not parse: $error\n" unless $error =~ /^403: api_key is not valid/;
print "ok a wrong api_key: ", $res->code, " $error";
