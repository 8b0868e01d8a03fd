from connector.worker import Worker
from tests.conftest import API, referral_event


def test_opt_in_flow(post_events, runtime, requests_mock, listrak_token):
    contact = requests_mock.post(f"{API}/List/12345/Contact", status_code=201,
                                 json={"status": 201, "resourceId": "jane.doe@example.com"})
    response = post_events(referral_event())
    assert response.status_code == 202, response.json
    assert response.json == {"accepted": 1, "duplicates": 0}
    assert Worker(runtime).run_once() == 1
    assert contact.call_count == 1
    print(contact.last_request.json())
