with source as ({{ dedupe(source('clever', 'district_admins')) }}),  -- an id served twice keeps its newest copy

final as (
    select {{ clever_ids('user_id') }}, {{ trimmed('first_name', 'last_name') }},
        nullif(lower(trim(email)), '') as email, {{ trimmed('title') }}
    from source
)

select * from final
