with source as ({{ dedupe(source('clever', 'schools')) }}),  -- an id served twice keeps its newest copy

final as (
    select {{ clever_ids('school_id') }}, {{ trimmed('name', 'sis_id', 'state_id', 'nces_id') }},
        nullif(trim(low_grade), '') as low_grade_raw, nullif(trim(high_grade), '') as high_grade_raw
    from source
)

select * from final
