with source as ({{ dedupe(source('clever', 'courses'), newest_first=none) }}),  -- an id served twice keeps its newest copy

final as (
    select {{ clever_ids('course_id', with_clever_district=false) }}, {{ trimmed('name', 'number') }}
    from source
)

select * from final
